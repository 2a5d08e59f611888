namespace VicunaBatch.Testing;

/// <summary>Where the test build's checkout and the project's shared data are.</summary>
public static class Checkout
{
    private static readonly Lazy<string> RootLazy = new(FindRoot);

    /// <summary>The folder holding VicunaBatch.sln, found by walking up from <see cref="AppContext.BaseDirectory"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">No folder at or above the test build holds VicunaBatch.sln.</exception>
    public static string Root => RootLazy.Value;

    /// <summary>
    /// The shared data folder (models/, data/): env <c>VICUNA_SHARED</c> when set and non-empty, else
    /// <c>../shared</c> beside <see cref="Root"/>. Not checked: callers say what they need from it.
    /// </summary>
    public static string Shared
    {
        get
        {
            string? fromEnvironment = Environment.GetEnvironmentVariable("VICUNA_SHARED");
            return string.IsNullOrEmpty(fromEnvironment) ? Path.GetFullPath(Path.Combine(Root, "..", "shared")) : fromEnvironment;
        }
    }

    private static string FindRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "VicunaBatch.sln"))) return folder.FullName;
        }
        throw new DirectoryNotFoundException($"No VicunaBatch.sln in '{AppContext.BaseDirectory}' or any folder above it.");
    }
}

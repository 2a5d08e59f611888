namespace VicunaBatch.Local.Tests;

/// <summary>A fact about Unix file modes: skipped on Windows, which has none (a data folder sets no modes there).</summary>
public sealed class UnixFactAttribute : FactAttribute
{
    public UnixFactAttribute()
    {
        if (OperatingSystem.IsWindows()) Skip = "Unix file modes: Windows has none";
    }
}

/// <summary>Permission bits as <c>chmod</c> writes them ("700", "600", "755"), read with <see cref="File.GetUnixFileMode(string)"/>.</summary>
public static class UnixModes
{
    public static string Of(string path) => OperatingSystem.IsWindows()
        ? throw new PlatformNotSupportedException("Unix file modes")
        : Convert.ToString((int)File.GetUnixFileMode(path) & 0b111_111_111, 8);

    /// <summary>The mode a folder gets from this process's umask alone (what the user's folders get).</summary>
    public static string OfNewFolder()
    {
        // not Directory.CreateTempSubdirectory: it makes its folder 0700 whatever the umask
        var probe = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"vicuna-umask-{Guid.NewGuid():N}"));
        try { return Of(probe.FullName); }
        finally { probe.Delete(); }
    }

    /// <summary>The mode a file gets from this process's umask alone.</summary>
    public static string OfNewFile()
    {
        var probe = Path.GetTempFileName(); // made 0600 by .NET: write a new one instead
        File.Delete(probe);
        File.WriteAllText(probe, "");
        try { return Of(probe); }
        finally { File.Delete(probe); }
    }

    public static void Set(string path, string octal)
    {
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, (UnixFileMode)Convert.ToInt32(octal, 8));
    }
}

namespace VicunaBatch.Execution;

/// <summary>The command-line arguments every web host of an engine (<c>serve</c>, <c>vicuna-worker</c>) builds with.</summary>
public static class HostArguments
{
    /// <summary>
    /// The host's own arguments first: configuration files are read once, not watched. ASP.NET Core's default reloads
    /// them on change, which puts an inotify watch on every folder under the content root (the current folder): a walk
    /// of the whole tree before it listens, and a crash where the tree has more folders than the user's inotify limit
    /// (docs/reliability.md, "Load and size"). Later arguments still override it.
    /// </summary>
    public static string[] With(string[] args) => ["--hostBuilder:reloadConfigOnChange=false", .. args];
}

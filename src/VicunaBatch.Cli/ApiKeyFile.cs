namespace VicunaBatch.Cli;

/// <summary>
/// A file of API keys (<c>--api-key-file</c> of <c>serve</c> and of the client commands): one key a line, blank lines
/// and lines that start with <c>#</c> skipped. A key given with <c>--api-key</c> is in the process list, which every user
/// of the machine can read (<c>ps</c>, <c>/proc/PID/cmdline</c>); a file, or the environment (<c>/proc/PID/environ</c> is
/// its user's alone), is not. On Unix a key file that group or others may read or write is refused, as ssh refuses such
/// a private key: a key others can read is a key others have, and the fix is one chmod.
/// </summary>
internal static class ApiKeyFile
{
    public const string Flag = "--api-key-file";

    private const UnixFileMode OthersReadOrWrite =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    /// <summary>The keys in <paramref name="path"/>, in order; a usage error when it is missing, open to others or holds none. Keys are never echoed.</summary>
    public static IReadOnlyList<string> Read(string path)
    {
        if (!File.Exists(path)) throw new UsageException($"{Flag} {path}: file not found");
        if (!OperatingSystem.IsWindows() && File.GetUnixFileMode(path) is var mode && (mode & OthersReadOrWrite) != 0)
            throw new UsageException($"{Flag} {path} is open to other users (mode {Convert.ToString((int)mode & 0b111_111_111, 8)}): chmod 600 {path}");
        var keys = File.ReadLines(path).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        if (keys.Count == 0) throw new UsageException($"{Flag} {path} holds no key (one a line; blank lines and lines that start with # are skipped)");
        return keys;
    }

    /// <summary>The one line a command prints when it was given a key with <c>--api-key</c>; <paramref name="variable"/> is its environment variable.</summary>
    public static string CommandLineWarning(string variable) =>
        $"--api-key: a key on the command line is visible to every user of this machine in the process list (ps); give it with {Flag} FILE or {variable} instead";
}

using System.Runtime.Versioning;

namespace VicunaBatch.Local;

/// <summary>
/// The modes that keep a data folder's contents to the user who runs the process: folders 0700, files 0600, given when
/// they are created, so a secret is never readable by anyone else, not even between a create and a chmod. These are
/// Unix modes: on Windows nothing is set, and a new file or folder inherits its parent's ACL (a user's profile is
/// private by default).
/// </summary>
public static class OwnerOnly
{
    /// <summary><c>rwx------</c></summary>
    public const UnixFileMode FolderBits = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary><c>rw-------</c></summary>
    public const UnixFileMode FileBits = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private const UnixFileMode OthersBits = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>The file system has Unix modes (every OS .NET runs on but Windows).</summary>
    [UnsupportedOSPlatformGuard("windows")]
    public static bool HasModes => !OperatingSystem.IsWindows();

    /// <summary>Makes <paramref name="path"/> and its missing parents 0700; an existing folder keeps its mode.</summary>
    public static void CreateFolder(string path)
    {
        if (!HasModes)
        {
            Directory.CreateDirectory(path);
            return;
        }
        // one level at a time: Directory.CreateDirectory(path, mode) gives the mode to the last folder only
        var missing = new Stack<string>();
        for (var folder = Path.GetFullPath(path); !Directory.Exists(folder); folder = Path.GetDirectoryName(folder)!) missing.Push(folder);
        while (missing.TryPop(out var folder)) Directory.CreateDirectory(folder, FolderBits);
    }

    /// <summary>Options of a <see cref="FileStream"/> whose file, if this opening creates it, is created 0600.</summary>
    public static FileStreamOptions StreamOptions(FileMode mode, FileAccess access, FileShare share, int bufferSize = 4096, bool useAsync = false)
    {
        var options = new FileStreamOptions
        {
            Mode = mode, Access = access, Share = share, BufferSize = bufferSize, Options = useAsync ? FileOptions.Asynchronous : FileOptions.None,
        };
        if (HasModes && mode is FileMode.CreateNew or FileMode.Create or FileMode.OpenOrCreate) options.UnixCreateMode = FileBits;
        return options;
    }

    /// <summary>
    /// Takes group and other access away from an existing file or folder of ours (one that an earlier version made with
    /// the umask's modes). Nothing happens to a missing path or to one another user owns (chmod refused).
    /// </summary>
    public static void Tighten(string path)
    {
        if (!HasModes) return;
        try
        {
            var mode = File.GetUnixFileMode(path);
            if ((mode & OthersBits) != 0) File.SetUnixFileMode(path, mode & ~OthersBits);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException) { }
    }

    /// <summary>The mode as <c>chmod</c> writes it ("755") when group or others may read, write or enter <paramref name="path"/>; else null.</summary>
    public static string? OpenToOthers(string path)
    {
        if (!HasModes) return null;
        var mode = File.GetUnixFileMode(path);
        return (mode & OthersBits) == 0 ? null : Convert.ToString((int)mode & 0b111_111_111, 8);
    }
}

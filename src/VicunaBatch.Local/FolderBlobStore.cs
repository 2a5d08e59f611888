using System.Runtime.CompilerServices;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Local;

/// <summary>Options of <see cref="FolderBlobStore"/>.</summary>
public sealed class FolderBlobStoreOptions
{
    /// <summary>Folder holding the blobs (created at the first write: a store that is only read leaves its folder as it was). Required.</summary>
    public required string RootPath { get; init; }

    /// <summary>fsync each blob before it becomes visible. Default true.</summary>
    public bool FlushToDisk { get; init; } = true;

    /// <summary>
    /// Folder of the writes in progress; it must be on the root's file system (each write is renamed into place).
    /// Default null: "{root}/.tmp". A store over a user's folder puts it in its own state folder beside.
    /// </summary>
    public string? TempPath { get; init; }

    /// <summary>
    /// Folders the store makes are 0700 and its files 0600 from their creation (<see cref="Local.OwnerOnly"/>; nothing on
    /// Windows). Default false: the modes of the user's umask, as a pipeline's output folder (the user's own) needs.
    /// <c>AddLocalTransport</c> sets it for a data folder's blobs, which hold secrets (batches' webhook secrets,
    /// pipeline definitions).
    /// </summary>
    public bool OwnerOnly { get; init; }
}

/// <summary>
/// <see cref="IBlobStore"/> on a folder: blob "a/b.json" is file "{root}/a/b.json". Writes go to
/// "{root}/.tmp" (made at the first write, so a store that is only read — a pipeline's source folder — gains no folder)
/// and are renamed into place (readers never see half a blob). ETag = size + mtime.
/// Create-only is an atomic no-overwrite rename; if-match is checked under an exclusive lock file,
/// so conditions hold across processes. Folders are made by a put and removed by the delete that empties them, as a
/// flat blob namespace has none: a deleted blob leaves no trace.
/// </summary>
public sealed class FolderBlobStore : IBlobStore
{
    private const string TempFolder = ".tmp";
    private readonly string _root;
    private readonly string _temp;
    private readonly FolderBlobStoreOptions _options;

    public FolderBlobStore(FolderBlobStoreOptions options)
    {
        _options = options;
        _root = Path.GetFullPath(options.RootPath);
        _temp = Path.GetFullPath(options.TempPath ?? Path.Combine(_root, TempFolder));
    }

    public async Task<BlobProperties> PutAsync(string name, Stream content, BlobCondition condition, CancellationToken cancellationToken = default)
    {
        var path = PathOf(name);
        var temp = Path.Combine(_temp, $"{Guid.NewGuid():N}.tmp");
        try
        {
            CreateFolder(_temp);
            await using (var file = new FileStream(temp, StreamOptions(FileMode.CreateNew, FileAccess.Write, FileShare.None, 64 * 1024, useAsync: true)))
            {
                await content.CopyToAsync(file, cancellationToken);
                await file.FlushAsync(cancellationToken);
                if (_options.FlushToDisk) file.Flush(flushToDisk: true);
            }
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    CreateFolder(Path.GetDirectoryName(path)!);
                    if (condition.CreateOnly) MoveCreateOnly(name, temp, path);
                    else if (condition.ETag is { } etag) await MoveIfMatchAsync(name, temp, path, etag, cancellationToken);
                    else File.Move(temp, path, overwrite: true);
                    return PropertiesOf(name, new FileInfo(path));
                }
                // a delete emptied and pruned the folder meanwhile: make it again. The rename's ENOENT reads as either of
                // the not-found exceptions, and a folder pruned between mkdir's EEXIST and its check as "already exists"
                catch (IOException) when (attempt < 10 && File.Exists(temp)) { }
            }
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new BlobStoreException(BlobStoreFailure.Unavailable, name, $"could not write blob {name}: {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new BlobStoreException(BlobStoreFailure.Denied, name, $"could not write blob {name}: {e.Message}", e);
        }
        finally
        {
            // with its folder gone (deleted under a running process) there is nothing to delete, and the write's own
            // error, not this one, is what the caller must see
            try { File.Delete(temp); } catch (DirectoryNotFoundException) { }
        }
    }

    public Task<Stream> OpenReadAsync(string name, BlobRange? range = null, CancellationToken cancellationToken = default)
    {
        var path = PathOf(name);
        FileStream file;
        try { file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 64 * 1024, useAsync: true); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new BlobStoreException(BlobStoreFailure.NotFound, name, $"blob {name} does not exist", e);
        }
        if (range is not { } r) return Task.FromResult<Stream>(file);
        file.Position = r.Offset;
        return Task.FromResult<Stream>(new RangeStream(file, r.Length ?? long.MaxValue));
    }

    public Task<BlobProperties?> GetPropertiesAsync(string name, CancellationToken cancellationToken = default)
    {
        var info = new FileInfo(PathOf(name));
        return Task.FromResult(info.Exists ? PropertiesOf(name, info) : null);
    }

    public async IAsyncEnumerable<string> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        int slash = prefix.LastIndexOf('/');
        var folder = slash < 0 ? _root : PathOf(prefix[..slash]);
        if (!Directory.Exists(folder)) yield break;
        var names = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(_root, p).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(n => n.StartsWith(prefix, StringComparison.Ordinal) && !n.StartsWith(TempFolder + "/", StringComparison.Ordinal)
                && !n.EndsWith(".lock", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal);
        foreach (var name in names)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return name;
        }
        await Task.CompletedTask;
    }

    /// <summary>Deletes the blob and the folders that leaves empty: as in a blob container, a folder is there only while a blob is in it.</summary>
    public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        var path = PathOf(name);
        if (!File.Exists(path)) return Task.FromResult(false);
        File.Delete(path);
        PruneEmptyFolders(Path.GetDirectoryName(path)!);
        return Task.FromResult(true);
    }

    /// <summary>
    /// Removes <paramref name="folder"/> and the folders above it, up to the root, while they are empty: a name that held
    /// a blob names nothing once the blob is gone (the tenant folders a <c>TenantRename</c> empties, which were named
    /// by a hash of an API key). A write into a folder pruned meanwhile makes it again (<see cref="PutAsync"/>).
    /// </summary>
    private void PruneEmptyFolders(string folder)
    {
        for (; folder.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal); folder = Path.GetDirectoryName(folder)!)
        {
            try { Directory.Delete(folder, recursive: false); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; } // not empty, or gone
        }
    }

    /// <summary>Maps a blob name to a path under the root; rejects absolute names, traversal and odd segments.</summary>
    internal string PathOf(string name)
    {
        if (string.IsNullOrEmpty(name) || name.StartsWith('/') || name.Contains('\\') || name.Contains(':') || name.Contains('\0'))
            throw InvalidName(name, "must be a relative name with '/' separators");
        var segments = name.Split('/');
        if (segments.Any(s => s is "" or "." or ".."))
            throw InvalidName(name, "must not contain empty, '.' or '..' segments");
        if (segments[0] == TempFolder || name.EndsWith(".lock", StringComparison.Ordinal))
            throw InvalidName(name, $"'{TempFolder}/' and '*.lock' are reserved");
        var path = Path.GetFullPath(Path.Combine(_root, Path.Combine(segments)));
        if (!path.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw InvalidName(name, "resolves outside the store");
        return path;
    }

    private void CreateFolder(string path)
    {
        if (_options.OwnerOnly) Local.OwnerOnly.CreateFolder(path);
        else Directory.CreateDirectory(path);
    }

    /// <summary>A new file is 0600 with <see cref="FolderBlobStoreOptions.OwnerOnly"/>; the umask's mode without.</summary>
    private FileStreamOptions StreamOptions(FileMode mode, FileAccess access, FileShare share, int bufferSize = 4096, bool useAsync = false) =>
        _options.OwnerOnly ? Local.OwnerOnly.StreamOptions(mode, access, share, bufferSize, useAsync)
            : new FileStreamOptions { Mode = mode, Access = access, Share = share, BufferSize = bufferSize, Options = useAsync ? FileOptions.Asynchronous : FileOptions.None };

    private static BlobStoreException InvalidName(string name, string why) =>
        new(BlobStoreFailure.InvalidName, name, $"invalid blob name \"{name}\": {why}");

    private static BlobProperties PropertiesOf(string name, FileInfo info) =>
        new(name, $"\"{info.Length:x}-{info.LastWriteTimeUtc.Ticks:x}\"", info.Length, new DateTimeOffset(info.LastWriteTimeUtc));

    private static void MoveCreateOnly(string name, string temp, string path)
    {
        try { File.Move(temp, path, overwrite: false); }
        catch (IOException) when (File.Exists(path))
        {
            throw new BlobStoreException(BlobStoreFailure.ConditionFailed, name, $"blob {name} already exists");
        }
    }

    private async Task MoveIfMatchAsync(string name, string temp, string path, string etag, CancellationToken cancellationToken)
    {
        await using var fileLock = await AcquireLockAsync(path + ".lock", cancellationToken);
        var info = new FileInfo(path);
        var current = info.Exists ? PropertiesOf(name, info).ETag : null;
        if (current != etag)
            throw new BlobStoreException(BlobStoreFailure.ConditionFailed, name,
                current is null ? $"blob {name} does not exist" : $"blob {name} changed: ETag {current}, expected {etag}");
        File.Move(temp, path, overwrite: true);
    }

    private async Task<FileStream> AcquireLockAsync(string lockPath, CancellationToken cancellationToken)
    {
        while (true)
        {
            try { return new FileStream(lockPath, StreamOptions(FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)); }
            catch (DirectoryNotFoundException) { CreateFolder(Path.GetDirectoryName(lockPath)!); } // pruned by a delete meanwhile
            catch (IOException) { await Task.Delay(5, cancellationToken); }
        }
    }
}

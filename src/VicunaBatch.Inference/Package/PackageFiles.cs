using System.Runtime.CompilerServices;

namespace VicunaBatch.Inference.Package;

/// <summary>
/// Where a model package's files are: a folder on disk (local runs; ONNX Runtime reads the weights from the files), or
/// buffers in host memory (a package read from blob storage with no local copy; ONNX Runtime takes the weights from the
/// buffers). Everything that opens a package reads its files through this one seam. The memory kind owns its buffers:
/// dispose it after every session made from it.
/// </summary>
public abstract class PackageFiles : IDisposable
{
    /// <summary>The folder, or where the buffers came from (a blob folder's URI): what error messages name.</summary>
    public abstract string Location { get; }

    /// <summary>The name the package is served under when it is given none: the folder's (or blob folder's) last segment.</summary>
    public string Name => Location.TrimEnd('/', Path.DirectorySeparatorChar).Split('/', Path.DirectorySeparatorChar)[^1];

    public abstract bool Contains(string name);

    /// <summary>A whole file as bytes (a small one: the config, the tokenizer, the graph without its weights).</summary>
    public abstract byte[] ReadAllBytes(string name);

    /// <summary>The file as an error message names it.</summary>
    public string Describe(string name) => Location.TrimEnd('/', Path.DirectorySeparatorChar) + "/" + name;

    /// <summary>The file's path on disk, or null when the files are in memory.</summary>
    public abstract string? PathOf(string name);

    /// <summary>The files held in memory, by name (empty for a folder).</summary>
    public abstract IReadOnlyDictionary<string, PackageFileBuffer> Buffers { get; }

    /// <summary>The files of the folder <paramref name="directory"/>.</summary>
    public static PackageFiles InDirectory(string directory)
    {
        var full = Path.GetFullPath(directory);
        if (!System.IO.Directory.Exists(full)) throw new ModelPackageException($"model package folder not found: {full}");
        return new DirectoryFiles(full);
    }

    /// <summary>Files in memory, read from <paramref name="location"/>; takes ownership of the buffers.</summary>
    public static PackageFiles InMemory(string location, IReadOnlyDictionary<string, PackageFileBuffer> files) => new MemoryFiles(location, files);

    /// <summary>Every file of the package (top level) and its size; a link's size is its target's.</summary>
    public abstract IReadOnlyList<(string Name, long NumBytes)> Sizes();

    /// <summary>
    /// <paramref name="numOwners"/> views of these files, one for each model opened from them (one engine per GPU): the
    /// files are read, or held in memory, once, and disposed when the last view is. These files belong to the views.
    /// </summary>
    public IReadOnlyList<PackageFiles> Share(int numOwners)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numOwners, 1);
        var owners = new StrongBox<int>(numOwners);
        return [.. Enumerable.Range(0, numOwners).Select(_ => new SharedFiles(this, owners))];
    }

    public virtual void Dispose() => GC.SuppressFinalize(this);

    private sealed class SharedFiles(PackageFiles files, StrongBox<int> owners) : ForwardingPackageFiles(files)
    {
        private int _disposed;

        public override void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0 && Interlocked.Decrement(ref owners.Value) == 0) Inner.Dispose();
            GC.SuppressFinalize(this);
        }
    }

    private sealed class DirectoryFiles(string directory) : PackageFiles
    {
        public override string Location => directory;

        public override bool Contains(string name) => File.Exists(Path.Combine(directory, name));

        public override byte[] ReadAllBytes(string name) => File.ReadAllBytes(Path.Combine(directory, name));

        public override string? PathOf(string name) => Path.Combine(directory, name);

        public override IReadOnlyDictionary<string, PackageFileBuffer> Buffers { get; } = new Dictionary<string, PackageFileBuffer>();

        public override IReadOnlyList<(string Name, long NumBytes)> Sizes() =>
            [.. new DirectoryInfo(directory).EnumerateFiles().Select(file =>
                (file.Name, file.LinkTarget is null ? file.Length : ((FileInfo?)file.ResolveLinkTarget(returnFinalTarget: true))?.Length ?? 0))];
    }

    private sealed class MemoryFiles(string location, IReadOnlyDictionary<string, PackageFileBuffer> files) : PackageFiles
    {
        public override string Location => location;

        public override bool Contains(string name) => files.ContainsKey(name);

        public override byte[] ReadAllBytes(string name) =>
            files.TryGetValue(name, out var buffer) ? buffer.ToArray() : throw new ModelPackageException($"{Describe(name)} is not in the package");

        public override string? PathOf(string name) => null;

        public override IReadOnlyDictionary<string, PackageFileBuffer> Buffers => files;

        public override IReadOnlyList<(string Name, long NumBytes)> Sizes() => [.. files.Select(file => (file.Key, file.Value.NumBytes))];

        public override void Dispose()
        {
            foreach (var buffer in files.Values) buffer.Dispose();
            base.Dispose();
        }
    }
}

/// <summary>Files that are another <see cref="PackageFiles"/>'s, for a view that changes only what disposing does.</summary>
public abstract class ForwardingPackageFiles(PackageFiles inner) : PackageFiles
{
    protected PackageFiles Inner { get; } = inner;

    public override string Location => Inner.Location;

    public override bool Contains(string name) => Inner.Contains(name);

    public override byte[] ReadAllBytes(string name) => Inner.ReadAllBytes(name);

    public override string? PathOf(string name) => Inner.PathOf(name);

    public override IReadOnlyDictionary<string, PackageFileBuffer> Buffers => Inner.Buffers;

    public override IReadOnlyList<(string Name, long NumBytes)> Sizes() => Inner.Sizes();

    /// <summary>Disposes the files forwarded to.</summary>
    public override void Dispose()
    {
        Inner.Dispose();
        base.Dispose();
    }
}

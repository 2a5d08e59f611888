using System.Diagnostics;
using VicunaBatch.Core.Ports;
using VicunaBatch.Inference.Package;

namespace VicunaBatch.Execution;

/// <summary>How <see cref="BlobPackageReader"/> reads; bound from <c>Model:Read</c> where a host exposes it.</summary>
public sealed class PackageReadOptions
{
    /// <summary>Bytes of one ranged read. Default 32 MiB: large enough that a request's latency is small beside its
    /// transfer, small enough that a 4 GB file is spread over every parallel reader.</summary>
    public long ChunkBytes { get; set; } = 32L << 20;

    /// <summary>Ranged reads in flight at once, over all files of the package. Default 16.</summary>
    public int MaxParallelReads { get; set; } = 16;

    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ChunkBytes, 1L << 16, nameof(ChunkBytes));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ChunkBytes, 1L << 30, nameof(ChunkBytes));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxParallelReads, 1, nameof(MaxParallelReads));
    }
}

/// <summary>What one read of a package took: its bytes, its ranged reads and the time.</summary>
public sealed record PackageReadSummary(int NumFiles, long NumBytes, int NumReads, TimeSpan Elapsed)
{
    public double BytesPerSecond => NumBytes / Math.Max(Elapsed.TotalSeconds, 1e-9);
}

/// <summary>
/// Reads a model package folder from a blob store (on Azure, <c>models/NAME/</c> in the deployment's storage account)
/// straight into host memory, with no local copy: each file into one native buffer (<see cref="PackageFileBuffer"/>),
/// in ranged reads of <see cref="PackageReadOptions.ChunkBytes"/>, <see cref="PackageReadOptions.MaxParallelReads"/>
/// in flight over the whole package, each written in place. Host memory holds the package once; the model opened from
/// it (<see cref="Inference.LoadedModel.Open(PackageFiles, Inference.Engine.EngineOptions)"/>) hands the weights to
/// ONNX Runtime from there.
/// </summary>
/// <param name="prefix">The folder's blob prefix, ending in '/' (or empty: the whole store).</param>
/// <param name="location">The folder as messages name it (its URI).</param>
public sealed class BlobPackageReader(IBlobStore store, string prefix, string location, PackageReadOptions? options = null)
{
    private readonly PackageReadOptions _options = options ?? new PackageReadOptions();

    /// <summary>
    /// Every file of the package, or only <paramref name="only"/> (relative names: a host that needs the tokenizer and
    /// the config, not the weights). A package without <c>genai_config.json</c>, a blob gone or shorter than listed, is a
    /// <see cref="ModelPackageException"/> naming it; nothing read stays allocated after a failure.
    /// </summary>
    public async Task<(PackageFiles Files, PackageReadSummary Summary)> ReadAsync(IReadOnlySet<string>? only = null, CancellationToken cancellationToken = default)
    {
        _options.Validate();
        var started = Stopwatch.GetTimestamp();
        var names = new List<string>();
        await foreach (var name in store.ListAsync(prefix, cancellationToken))
        {
            var relative = name[prefix.Length..];
            if (only is null || only.Contains(relative)) names.Add(relative);
        }
        if (!names.Contains(ModelPackage.ConfigFileName))
            throw new ModelPackageException($"no model package at {location} ({names.Count} blobs there, none is {ModelPackage.ConfigFileName})");
        if (only is not null && only.Except(names).FirstOrDefault() is { } absent)
            throw new ModelPackageException($"{Describe(absent)}: blob not found");

        var buffers = new Dictionary<string, PackageFileBuffer>();
        try
        {
            var ranges = new List<(string Name, PackageFileBuffer Buffer, long Offset, long Length)>();
            foreach (var name in names)
            {
                var properties = await store.GetPropertiesAsync(prefix + name, cancellationToken)
                    ?? throw new ModelPackageException($"{Describe(name)}: blob not found (listed, then gone)");
                var buffer = buffers[name] = new PackageFileBuffer(properties.Length);
                for (long offset = 0; offset < properties.Length; offset += _options.ChunkBytes)
                    ranges.Add((name, buffer, offset, Math.Min(_options.ChunkBytes, properties.Length - offset)));
            }
            await Parallel.ForEachAsync(ranges, new ParallelOptions { MaxDegreeOfParallelism = _options.MaxParallelReads, CancellationToken = cancellationToken },
                async (range, ct) => await ReadRangeAsync(range.Name, range.Buffer, range.Offset, range.Length, ct));
            var summary = new PackageReadSummary(names.Count, buffers.Values.Sum(b => b.NumBytes), ranges.Count, Stopwatch.GetElapsedTime(started));
            return (PackageFiles.InMemory(location, buffers), summary);
        }
        catch
        {
            foreach (var buffer in buffers.Values) buffer.Dispose();
            throw;
        }
    }

    private async Task ReadRangeAsync(string name, PackageFileBuffer buffer, long offset, long length, CancellationToken cancellationToken)
    {
        using var target = buffer.OpenWrite(offset, length);
        try
        {
            await using var source = await store.OpenReadAsync(prefix + name, new BlobRange(offset, length), cancellationToken);
            await source.CopyToAsync(target, 1 << 20, cancellationToken);
        }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.NotFound)
        {
            throw new ModelPackageException($"{Describe(name)}: blob not found (deleted while read?)", e);
        }
        catch (NotSupportedException e) // the target refuses to grow past the range
        {
            throw new ModelPackageException($"{Describe(name)}: the read of bytes [{offset}, {offset + length}) gave more than {length} bytes", e);
        }
        if (target.Position != length)
            throw new ModelPackageException(
                $"{Describe(name)}: short read: bytes [{offset}, {offset + length}) gave {target.Position} of {length} (the blob was {buffer.NumBytes} bytes when listed: changed while read?)");
    }

    private string Describe(string name) => location.TrimEnd('/') + "/" + name;
}

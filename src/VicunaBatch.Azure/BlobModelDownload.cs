using Azure;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace VicunaBatch.Azure;

/// <summary>
/// Copies a model package folder from blob storage (<c>https://ACCOUNT.blob.core.windows.net/models/NAME</c>: every
/// blob under <c>NAME/</c>) to a local folder, once: a folder that already holds <c>genai_config.json</c> is used as it
/// is. Files land in <c>FOLDER.partial</c> first and the folder appears by one rename when every blob is there, so a
/// worker killed mid-copy (26 GB for Vicuna-13B fp16) starts over instead of loading half a package.
/// </summary>
/// <param name="only">Relative file names to copy (the rest of the package is left in storage); null copies every file.</param>
public sealed class BlobModelDownload(BlobContainerClient container, string prefix, string localPath, IReadOnlySet<string>? only = null)
{
    /// <summary>Blobs downloaded at once (each one in 64 MiB ranges, several ranges at once).</summary>
    private const int MaxParallelBlobs = 4;

    /// <summary>
    /// The package at <paramref name="sourceUri"/> (<c>.../CONTAINER/FOLDER</c>) through <paramref name="service"/>, the
    /// storage account client the Azure transport already built with its credential; the URI must name that account.
    /// </summary>
    public static BlobModelDownload From(BlobServiceClient service, Uri sourceUri, string localPath, IReadOnlySet<string>? only = null)
    {
        var parts = new BlobUriBuilder(sourceUri);
        if (string.IsNullOrEmpty(parts.BlobContainerName))
            throw new ArgumentException($"model source {sourceUri} names no container (expected .../CONTAINER/FOLDER)", nameof(sourceUri));
        if (!string.Equals(parts.AccountName, service.AccountName, StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"model source {sourceUri} is not in the storage account {service.AccountName}", nameof(sourceUri));
        var prefix = (parts.BlobName ?? "").Trim('/');
        return new BlobModelDownload(service.GetBlobContainerClient(parts.BlobContainerName), prefix.Length == 0 ? "" : prefix + "/", localPath, only);
    }

    /// <summary>Downloads unless the package is already there; returns the number of bytes copied (0 when it was).</summary>
    public async Task<long> EnsureAsync(Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        if (File.Exists(Path.Combine(localPath, "genai_config.json"))) return 0;
        var partial = localPath.TrimEnd('/') + ".partial";
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        Directory.CreateDirectory(partial);

        var blobs = new List<BlobItem>();
        try
        {
            await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, cancellationToken)) blobs.Add(item);
        }
        catch (RequestFailedException e)
        {
            throw new IOException($"cannot list the model package at {container.Uri}/{prefix}: {e.Status} {e.ErrorCode}", e);
        }
        if (only is not null) blobs.RemoveAll(b => !only.Contains(b.Name[prefix.Length..]));
        if (!blobs.Any(b => b.Name == prefix + "genai_config.json"))
            throw new FileNotFoundException($"no model package at {container.Uri}/{prefix} ({blobs.Count} blobs there, none is genai_config.json)");

        long total = blobs.Sum(b => b.Properties.ContentLength ?? 0), done = 0;
        log?.Invoke($"downloading {blobs.Count} files ({total / (1 << 20)} MiB) from {container.Uri}/{prefix}");
        var transfer = new StorageTransferOptions { MaximumConcurrency = 8, InitialTransferSize = 64 << 20, MaximumTransferSize = 64 << 20 };
        await Parallel.ForEachAsync(blobs, new ParallelOptions { MaxDegreeOfParallelism = MaxParallelBlobs, CancellationToken = cancellationToken },
            async (item, ct) =>
            {
                var relative = item.Name[prefix.Length..];
                var target = Path.GetFullPath(Path.Combine(partial, relative));
                if (!target.StartsWith(Path.GetFullPath(partial) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                    throw new InvalidDataException($"blob {item.Name} would land outside {partial}");
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                await container.GetBlobClient(item.Name).DownloadToAsync(target, new BlobDownloadToOptions { TransferOptions = transfer }, ct);
                var sum = Interlocked.Add(ref done, item.Properties.ContentLength ?? 0);
                log?.Invoke($"model: {relative} ({sum / (1 << 20)} of {total / (1 << 20)} MiB)");
            });
        // an empty folder there (a fresh volume mount point) gives way; anything else is not ours to replace
        if (Directory.Exists(localPath) && !Directory.EnumerateFileSystemEntries(localPath).Any()) Directory.Delete(localPath);
        Directory.Move(partial, localPath);
        return total;
    }
}

using System.Runtime.CompilerServices;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Blobs;
using Azure;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Azure;

/// <summary>
/// <see cref="IBlobStore"/> on Azure Blob Storage block blobs, containers by role (<see cref="BlobRoutes"/>).
/// A put is one upload (single Put Blob, or staged blocks committed at the end), so readers see the old or the
/// new content, never a mix. Create-only is <c>If-None-Match: *</c>, compare-and-swap is <c>If-Match: ETag</c>;
/// the service evaluates both, so they hold across every process that writes the account.
/// </summary>
public sealed class AzureBlobStore : IBlobStore
{
    private readonly BlobServiceClient _service;
    private readonly BlobRoutes _routes;

    public AzureBlobStore(BlobServiceClient service, StorageContainerNames containers)
    {
        containers.Validate();
        (_service, _routes) = (service, new BlobRoutes(containers));
    }

    private AzureBlobStore(BlobServiceClient service, BlobRoutes routes) => (_service, _routes) = (service, routes);

    /// <summary>A store over one container, names taken whole (no role routing): a pipeline's source or output.</summary>
    public static AzureBlobStore ForContainer(BlobServiceClient service, string container) => new(service, new BlobRoutes(container));

    /// <summary>The containers this store writes (infra creates them on Azure; <see cref="CreateContainersAsync"/> for Azurite).</summary>
    public IEnumerable<string> ContainerNames => _routes.Containers;

    public async Task CreateContainersAsync(CancellationToken cancellationToken = default)
    {
        foreach (var container in _routes.Containers)
            await _service.GetBlobContainerClient(container).CreateIfNotExistsAsync(cancellationToken: cancellationToken);
    }

    public async Task<Core.Ports.BlobProperties> PutAsync(string name, Stream content, BlobCondition condition, CancellationToken cancellationToken = default)
    {
        var blob = Blob(name);
        var conditions = condition.CreateOnly ? new BlobRequestConditions { IfNoneMatch = ETag.All }
            : condition.ETag is { } etag ? new BlobRequestConditions { IfMatch = new ETag(etag) }
            : null;
        // a seekable stream goes as is (the SDK may re-read it to retry); a forward-only one is counted as it is read
        long start = content.CanSeek ? content.Position : 0;
        var counted = content.CanSeek ? null : new CountingStream(content);
        try
        {
            var info = await blob.UploadAsync(counted ?? content, new BlobUploadOptions { Conditions = conditions }, cancellationToken);
            long length = counted?.NumBytesRead ?? content.Length - start;
            return new Core.Ports.BlobProperties(name, info.Value.ETag.ToString(), length, info.Value.LastModified);
        }
        catch (RequestFailedException e) when (StorageErrors.IsConditionFailed(e) || (conditions?.IfMatch is not null && e.Status == 404 && e.ErrorCode == "BlobNotFound"))
        {
            throw new BlobStoreException(BlobStoreFailure.ConditionFailed, name, condition.CreateOnly
                ? $"blob {name} already exists" : $"blob {name} changed or is gone: ETag {condition.ETag} no longer matches", e);
        }
        catch (RequestFailedException e) when (e.ErrorCode == "ContainerNotFound")
        {
            throw new BlobStoreException(BlobStoreFailure.NotFound, name, $"container {blob.BlobContainerName} of blob {name} does not exist", e);
        }
        catch (Exception e) when (StorageErrors.IsStorageFailure(e)) { throw StorageErrors.Blob(e, name, "write"); }
    }

    public async Task<Stream> OpenReadAsync(string name, BlobRange? range = null, CancellationToken cancellationToken = default)
    {
        var blob = Blob(name);
        if (range is { Length: 0 }) // an empty range (HTTP has no way to ask for one): only check that the blob exists
            return await GetPropertiesAsync(name, cancellationToken) is null
                ? throw new BlobStoreException(BlobStoreFailure.NotFound, name, $"blob {name} does not exist")
                : new MemoryStream([], writable: false);
        var httpRange = range is { } r ? new HttpRange(r.Offset, r.Length) : default;
        try
        {
            var download = await blob.DownloadStreamingAsync(new BlobDownloadOptions { Range = httpRange }, cancellationToken);
            return download.Value.Content;
        }
        catch (RequestFailedException e) when (StorageErrors.IsNotFound(e))
        {
            throw new BlobStoreException(BlobStoreFailure.NotFound, name, $"blob {name} does not exist", e);
        }
        catch (RequestFailedException e) when (e.Status == 416)
        {
            return new MemoryStream([], writable: false); // offset at or past the end, as a file read there: no bytes
        }
        catch (Exception e) when (StorageErrors.IsStorageFailure(e)) { throw StorageErrors.Blob(e, name, "read"); }
    }

    public async Task<Core.Ports.BlobProperties?> GetPropertiesAsync(string name, CancellationToken cancellationToken = default)
    {
        var blob = Blob(name);
        try
        {
            var properties = (await blob.GetPropertiesAsync(cancellationToken: cancellationToken)).Value;
            return new Core.Ports.BlobProperties(name, properties.ETag.ToString(), properties.ContentLength, properties.LastModified);
        }
        catch (RequestFailedException e) when (StorageErrors.IsNotFound(e)) { return null; }
        catch (Exception e) when (StorageErrors.IsStorageFailure(e)) { throw StorageErrors.Blob(e, name, "read the properties of"); }
    }

    /// <summary>
    /// A prefix inside one routed segment ("files/…", "jobs/…") is one listing of one container, streamed in the
    /// service's order (ordinal). A shorter prefix ("", "fi") spans containers: those listings are merged in memory.
    /// </summary>
    public async IAsyncEnumerable<string> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        int slash = prefix.IndexOf('/');
        if (slash > 0 && _routes.Segments.Contains(prefix[..slash]))
        {
            var segment = prefix[..slash];
            await foreach (var blob in ListContainerAsync(_routes.ContainerOf(segment), prefix[(slash + 1)..], cancellationToken))
                yield return $"{segment}/{blob}";
            yield break;
        }
        if (slash > 0)
        {
            await foreach (var blob in ListContainerAsync(_routes.DefaultContainer, prefix, cancellationToken))
                if (!_routes.IsShadowed(blob)) yield return blob;
            yield break;
        }
        var names = new List<string>();
        await foreach (var blob in ListContainerAsync(_routes.DefaultContainer, prefix, cancellationToken))
            if (!_routes.IsShadowed(blob)) names.Add(blob);
        foreach (var segment in _routes.Segments.Where(s => (s + "/").StartsWith(prefix, StringComparison.Ordinal)))
            await foreach (var blob in ListContainerAsync(_routes.ContainerOf(segment), "", cancellationToken))
                names.Add($"{segment}/{blob}");
        names.Sort(StringComparer.Ordinal);
        foreach (var name in names) yield return name;
    }

    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        var blob = Blob(name);
        try { return (await blob.DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: cancellationToken)).Value; }
        catch (Exception e) when (StorageErrors.IsStorageFailure(e)) { throw StorageErrors.Blob(e, name, "delete"); }
    }

    private BlockBlobClient Blob(string name)
    {
        var (container, blob) = _routes.Locate(name);
        return _service.GetBlobContainerClient(container).GetBlockBlobClient(blob);
    }

    private async IAsyncEnumerable<string> ListContainerAsync(string container, string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var pages = _service.GetBlobContainerClient(container)
            .GetBlobsAsync(new GetBlobsOptions { Prefix = prefix.Length == 0 ? null : prefix }, cancellationToken).AsPages().GetAsyncEnumerator(cancellationToken);
        try
        {
            while (true)
            {
                Page<BlobItem> page;
                try
                {
                    if (!await pages.MoveNextAsync()) yield break;
                    page = pages.Current;
                }
                catch (RequestFailedException e) when (e.ErrorCode == "ContainerNotFound") { yield break; }
                catch (Exception e) when (StorageErrors.IsStorageFailure(e)) { throw StorageErrors.Blob(e, $"{container}/{prefix}", "list"); }
                foreach (var item in page.Values) yield return item.Name;
            }
        }
        finally
        {
            await pages.DisposeAsync();
        }
    }
}

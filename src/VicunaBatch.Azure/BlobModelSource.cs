using Azure.Storage.Blobs;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Azure;

/// <summary>
/// A model package folder in blob storage (<c>https://ACCOUNT.blob.core.windows.net/models/NAME</c>: every blob under
/// <c>NAME/</c>), as the blob store and prefix that Execution's <c>BlobPackageReader</c> reads into memory.
/// </summary>
/// <param name="Store">The folder's container.</param>
/// <param name="Prefix">The folder's blob prefix, ending in '/' (empty: the whole container).</param>
/// <param name="Uri">The folder's URI, as messages name it.</param>
public sealed record BlobModelSource(IBlobStore Store, string Prefix, Uri Uri)
{
    /// <summary>
    /// The package at <paramref name="sourceUri"/> (<c>.../CONTAINER/FOLDER</c>) through <paramref name="service"/>, the
    /// storage account client the Azure transport already built with its credential; the URI must name that account.
    /// </summary>
    public static BlobModelSource From(BlobServiceClient service, Uri sourceUri)
    {
        var parts = new BlobUriBuilder(sourceUri);
        if (string.IsNullOrEmpty(parts.BlobContainerName))
            throw new ArgumentException($"model source {sourceUri} names no container (expected .../CONTAINER/FOLDER)", nameof(sourceUri));
        if (!string.Equals(parts.AccountName, service.AccountName, StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"model source {sourceUri} is not in the storage account {service.AccountName}", nameof(sourceUri));
        var prefix = (parts.BlobName ?? "").Trim('/');
        return new BlobModelSource(AzureBlobStore.ForContainer(service, parts.BlobContainerName), prefix.Length == 0 ? "" : prefix + "/", sourceUri);
    }
}

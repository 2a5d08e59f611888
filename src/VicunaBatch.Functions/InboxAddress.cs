using Azure.Storage.Blobs;

namespace VicunaBatch.Functions;

/// <summary>
/// Which blob URLs are in the inbox: those of the app's own storage account (by account name, so Azure's
/// <c>https://{account}.blob.core.windows.net/…</c> and Azurite's <c>http://127.0.0.1:10000/{account}/…</c> both
/// work) and its inbox container (<c>Storage__Containers__Inbox</c>).
/// </summary>
public sealed class InboxAddress(string accountName, string containerName)
{
    public string AccountName { get; } = accountName;

    public string ContainerName { get; } = containerName;

    /// <summary>The blob name inside the inbox container (percent-escapes decoded), or null when <paramref name="url"/>
    /// names another account, another container, or the container itself.</summary>
    public string? BlobNameOf(Uri url)
    {
        var parts = new BlobUriBuilder(url);
        return string.Equals(parts.AccountName, AccountName, StringComparison.OrdinalIgnoreCase)
            && string.Equals(parts.BlobContainerName, ContainerName, StringComparison.Ordinal)
            && parts.BlobName is { Length: > 0 } name
            ? name
            : null;
    }
}

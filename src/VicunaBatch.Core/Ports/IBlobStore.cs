namespace VicunaBatch.Core.Ports;

/// <summary>Blob properties; <see cref="ETag"/> changes whenever the content changes.</summary>
public sealed record BlobProperties(string Name, string ETag, long Length, DateTimeOffset LastModified);

/// <summary>A byte range of a blob; <see cref="Length"/> null reads to the end.</summary>
public readonly record struct BlobRange(long Offset, long? Length);

/// <summary>Write precondition: none (overwrite), create-only, or if the current ETag matches.</summary>
public sealed record BlobCondition
{
    public static readonly BlobCondition None = new();
    public static readonly BlobCondition IfNotExists = new() { CreateOnly = true };
    public static BlobCondition IfMatch(string etag) => new() { ETag = etag };

    public bool CreateOnly { get; private init; }
    public string? ETag { get; private init; }
}

/// <summary>Flat named blobs ("jobs/batch_1/job.json"); names use '/' as separator.</summary>
public interface IBlobStore
{
    /// <summary>Writes the whole blob atomically. Throws <see cref="BlobStoreException"/> with
    /// <see cref="BlobStoreFailure.ConditionFailed"/> when the condition does not hold.</summary>
    Task<BlobProperties> PutAsync(string name, Stream content, BlobCondition condition, CancellationToken cancellationToken = default);

    /// <summary>Opens the blob (or a range of it) for reading; <see cref="BlobStoreFailure.NotFound"/> when absent.</summary>
    Task<Stream> OpenReadAsync(string name, BlobRange? range = null, CancellationToken cancellationToken = default);

    /// <summary>Properties, or null when the blob does not exist.</summary>
    Task<BlobProperties?> GetPropertiesAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Names starting with <paramref name="prefix"/>, in ordinal order.</summary>
    IAsyncEnumerable<string> ListAsync(string prefix, CancellationToken cancellationToken = default);

    /// <summary>Deletes the blob; false when it did not exist.</summary>
    Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default);
}

public enum BlobStoreFailure
{
    NotFound,
    ConditionFailed,
    InvalidName,
    Unavailable,
    /// <summary>The store refused the call (no permission, read-only, disabled): retrying the same call will not
    /// help until someone changes the store.</summary>
    Denied,
}

/// <summary>The one exception of the blob boundary.</summary>
public sealed class BlobStoreException(BlobStoreFailure reason, string blobName, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public BlobStoreFailure Reason { get; } = reason;
    public string BlobName { get; } = blobName;

    /// <summary>Retrying the same call may succeed.</summary>
    public bool IsTransient => Reason == BlobStoreFailure.Unavailable;
}

public static class BlobStoreExtensions
{
    public static async Task<bool> ExistsAsync(this IBlobStore store, string name, CancellationToken cancellationToken = default) =>
        await store.GetPropertiesAsync(name, cancellationToken) is not null;

    public static Task<BlobProperties> PutBytesAsync(this IBlobStore store, string name, byte[] content, BlobCondition condition, CancellationToken cancellationToken = default) =>
        store.PutAsync(name, new MemoryStream(content, writable: false), condition, cancellationToken);

    public static async Task<byte[]> ReadBytesAsync(this IBlobStore store, string name, CancellationToken cancellationToken = default)
    {
        await using var stream = await store.OpenReadAsync(name, null, cancellationToken);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }
}

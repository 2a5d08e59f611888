using System.Text.Json;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Files;

/// <summary>
/// Files of tenants over an <see cref="IBlobStore"/>: content is streamed into its blob, then the metadata
/// (<see cref="StoredFile"/>) is written create-only. Every read checks the owner; another tenant's file
/// reads as missing.
/// </summary>
public sealed class FileCatalog(IBlobStore blobs, TimeProvider time)
{
    /// <summary>Streams <paramref name="content"/> into a new file owned by <paramref name="owner"/>.</summary>
    public async Task<StoredFile> UploadAsync(string owner, FilePurpose purpose, string filename, Stream content, CancellationToken cancellationToken = default) =>
        await RegisterUploadAsync(await UploadContentAsync(filename, content, cancellationToken) with { Owner = owner, Purpose = purpose }, cancellationToken);

    /// <summary>Streams the content into a new blob and returns the file, not yet visible to anyone: fill in
    /// <see cref="StoredFile.Owner"/> and <see cref="StoredFile.Purpose"/> (multipart fields may follow the
    /// file), then <see cref="RegisterUploadAsync"/> it, or <see cref="DeleteContentAsync"/> to drop it.</summary>
    public async Task<StoredFile> UploadContentAsync(string filename, Stream content, CancellationToken cancellationToken = default)
    {
        var id = FileIds.New();
        var blob = FileIds.ContentBlob(id, filename);
        var properties = await blobs.PutAsync(blob, content, BlobCondition.IfNotExists, cancellationToken);
        return new StoredFile(id, "", FilePurpose.Batch, filename, properties.Length, time.GetUtcNow().ToUnixTimeSeconds(), blob);
    }

    public async Task<StoredFile> RegisterUploadAsync(StoredFile file, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(file.Owner, nameof(file));
        await SaveAsync(file, cancellationToken);
        return file;
    }

    /// <summary>The file, or null when it does not exist or belongs to another tenant.</summary>
    public async Task<StoredFile?> GetAsync(string owner, string fileId, CancellationToken cancellationToken = default)
    {
        if (!FileIds.IsValid(fileId)) return null;
        byte[] content;
        try { content = await blobs.ReadBytesAsync(FileIds.MetadataBlob(fileId), cancellationToken); }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.NotFound) { return null; }
        var file = JsonSerializer.Deserialize<StoredFile>(content, FilesJson.Options)!;
        return file.Owner == owner ? file : null;
    }

    public Task<Stream> OpenReadAsync(StoredFile file, CancellationToken cancellationToken = default) =>
        blobs.OpenReadAsync(file.Blob, null, cancellationToken);

    /// <summary>
    /// Makes a finished job's result blob a file of the job's owner (id from <see cref="FileIds.ForJobFile"/>);
    /// idempotent. Returns null when the blob does not exist (yet).
    /// </summary>
    public async Task<StoredFile?> RegisterJobFileAsync(string owner, string jobId, string kind, string blob, CancellationToken cancellationToken = default)
    {
        var id = FileIds.ForJobFile(jobId, kind);
        if (await GetAsync(owner, id, cancellationToken) is { } existing) return existing;
        var properties = await blobs.GetPropertiesAsync(blob, cancellationToken);
        if (properties is null) return null;
        var file = new StoredFile(id, owner, FilePurpose.BatchOutput, $"{jobId}_{kind}.jsonl", properties.Length,
            properties.LastModified.ToUnixTimeSeconds(), blob);
        await SaveAsync(file, cancellationToken);
        return file;
    }

    public Task<bool> DeleteContentAsync(StoredFile file, CancellationToken cancellationToken = default) =>
        blobs.DeleteAsync(file.Blob, cancellationToken);

    private async Task SaveAsync(StoredFile file, CancellationToken cancellationToken)
    {
        try
        {
            await blobs.PutBytesAsync(FileIds.MetadataBlob(file.Id), JsonSerializer.SerializeToUtf8Bytes(file, FilesJson.Options),
                BlobCondition.IfNotExists, cancellationToken);
        }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed) { } // registered concurrently: same content
    }
}

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
    /// idempotent. Returns null when the blob does not exist (yet). A job's files are its owner's: one registered for
    /// another tenant id (by a finalizer that read the job's record just before <c>TenantRename</c>
    /// renamed its owner) is given to <paramref name="owner"/>.
    /// </summary>
    public async Task<StoredFile?> RegisterJobFileAsync(string owner, string jobId, string kind, string blob, CancellationToken cancellationToken = default)
    {
        var id = FileIds.ForJobFile(jobId, kind);
        if (await GetAsync(owner, id, cancellationToken) is { } existing) return existing;
        if (await RenameOwnerAsync(id, _ => owner, cancellationToken) is { } renamed) return renamed;
        var properties = await blobs.GetPropertiesAsync(blob, cancellationToken);
        if (properties is null) return null;
        var file = new StoredFile(id, owner, FilePurpose.BatchOutput, $"{jobId}_{kind}.jsonl", properties.Length,
            properties.LastModified.ToUnixTimeSeconds(), blob);
        await SaveAsync(file, cancellationToken);
        return file;
    }

    /// <summary>
    /// Gives every file owned by a key of <paramref name="fromToTo"/> to its value, in one pass over all files
    /// (<c>TenantRename</c>); idempotent. Returns how many files changed owner.
    /// </summary>
    public async Task<int> RenameOwnersAsync(IReadOnlyDictionary<string, string> fromToTo, CancellationToken cancellationToken = default)
    {
        int numRenamed = 0;
        await foreach (var name in blobs.ListAsync(FileIds.Prefix, cancellationToken))
        {
            if (FileIds.OfMetadataBlob(name) is not { } fileId) continue; // content
            if (await RenameOwnerAsync(fileId, from => fromToTo.GetValueOrDefault(from), cancellationToken) is not null) numRenamed++;
        }
        return numRenamed;
    }

    /// <summary>
    /// Rewrites the file's owner to <paramref name="newOwnerOf"/>(its owner) unless that is null or the same, if the file
    /// did not change meanwhile (else reads it again); the renamed file, or null when nothing changed.
    /// </summary>
    private async Task<StoredFile?> RenameOwnerAsync(string fileId, Func<string, string?> newOwnerOf, CancellationToken cancellationToken)
    {
        var name = FileIds.MetadataBlob(fileId);
        while (true)
        {
            if (await blobs.GetPropertiesAsync(name, cancellationToken) is not { } properties) return null;
            StoredFile file;
            try { file = JsonSerializer.Deserialize<StoredFile>(await blobs.ReadBytesAsync(name, cancellationToken), FilesJson.Options)!; }
            catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.NotFound) { return null; }
            if (newOwnerOf(file.Owner) is not { } owner || owner == file.Owner) return null;
            var renamed = file with { Owner = owner };
            try
            {
                await blobs.PutBytesAsync(name, JsonSerializer.SerializeToUtf8Bytes(renamed, FilesJson.Options), BlobCondition.IfMatch(properties.ETag), cancellationToken);
                return renamed;
            }
            catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed) { } // changed meanwhile: read it again
        }
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

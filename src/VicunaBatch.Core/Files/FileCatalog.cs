using System.Text.Json;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Files;

/// <summary>
/// Files of tenants over an <see cref="IBlobStore"/>: content is streamed into its blob, then the file's entries in its
/// owner's listing and (when it expires) in the expiry queue, then the metadata (<see cref="StoredFile"/>), create-only.
/// Every read checks the owner and the file's expiry; another tenant's file, or an expired or deleted one, reads as
/// missing. Listing: <c>FileCatalog.Listing.cs</c>; deletion, expiry and the holds of running batches:
/// <c>FileCatalog.Removal.cs</c>.
/// </summary>
public sealed partial class FileCatalog(IBlobStore blobs, TimeProvider time)
{
    /// <summary>Streams <paramref name="content"/> into a new file owned by <paramref name="owner"/>.</summary>
    public async Task<StoredFile> UploadAsync(
        string owner, FilePurpose purpose, string filename, Stream content, long? expiresAfterSeconds = null, CancellationToken cancellationToken = default)
    {
        CheckExpiresAfter(expiresAfterSeconds);
        return await RegisterUploadAsync(await UploadContentAsync(filename, content, cancellationToken) with { Owner = owner, Purpose = purpose },
            expiresAfterSeconds, cancellationToken);
    }

    /// <summary>Streams the content into a new blob and returns the file, not yet visible to anyone: fill in
    /// <see cref="StoredFile.Owner"/> and <see cref="StoredFile.Purpose"/> (multipart fields may follow the
    /// file), then <see cref="RegisterUploadAsync"/> it, or <see cref="DeleteContentAsync"/> to drop it.</summary>
    public async Task<StoredFile> UploadContentAsync(string filename, Stream content, CancellationToken cancellationToken = default)
    {
        var id = FileIds.New();
        var blob = FileIds.ContentBlob(id, filename);
        var properties = await blobs.PutAsync(blob, content, BlobCondition.IfNotExists, cancellationToken);
        var now = time.GetUtcNow();
        return new StoredFile(id, "", FilePurpose.Batch, filename, properties.Length, now.ToUnixTimeSeconds(), blob, CreatedTicks: now.UtcTicks);
    }

    /// <summary>Makes the upload its owner's file, expiring <paramref name="expiresAfterSeconds"/> after its creation (null: a
    /// <c>batch</c> file after <see cref="FileExpiry.DefaultBatchSeconds"/>, as OpenAI's; other purposes never).</summary>
    public async Task<StoredFile> RegisterUploadAsync(StoredFile file, long? expiresAfterSeconds = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(file.Owner, nameof(file));
        CheckExpiresAfter(expiresAfterSeconds);
        var seconds = expiresAfterSeconds ?? (file.Purpose == FilePurpose.Batch ? FileExpiry.DefaultBatchSeconds : null);
        file = file with { ExpiresAt = FileExpiry.ExpiresAt(file.CreatedAt, seconds) };
        await SaveAsync(file, cancellationToken);
        return file;
    }

    private static void CheckExpiresAfter(long? seconds)
    {
        if (seconds is { } given && !FileExpiry.IsInRange(given))
            throw new ArgumentOutOfRangeException(nameof(seconds), given, $"must be in [{FileExpiry.MinSeconds}, {FileExpiry.MaxSeconds}]");
    }

    /// <summary>The file, or null when it does not exist, belongs to another tenant, has expired or was deleted.</summary>
    public async Task<StoredFile?> GetAsync(string owner, string fileId, CancellationToken cancellationToken = default) =>
        await ReadAsync(fileId, cancellationToken) is { } file && file.Owner == owner && file.IsLiveAt(Now) ? file : null;

    /// <summary>The stored record, whoever owns it, expired or deleted; null when there is none.</summary>
    private async Task<StoredFile?> ReadAsync(string fileId, CancellationToken cancellationToken)
    {
        if (!FileIds.IsValid(fileId)) return null;
        byte[] content;
        try { content = await blobs.ReadBytesAsync(FileIds.MetadataBlob(fileId), cancellationToken); }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.NotFound) { return null; }
        return JsonSerializer.Deserialize<StoredFile>(content, FilesJson.Options)!;
    }

    private long Now => time.GetUtcNow().ToUnixTimeSeconds();

    public Task<Stream> OpenReadAsync(StoredFile file, CancellationToken cancellationToken = default) =>
        blobs.OpenReadAsync(file.Blob, null, cancellationToken);

    /// <summary>
    /// Makes a finished job's result blob a file of the job's owner (id from <see cref="FileIds.ForJobFile"/>), expiring
    /// <paramref name="expiresAfterSeconds"/> after the blob was written (the batch's <c>output_expires_after</c>; null:
    /// never); idempotent. Returns null when the blob does not exist (yet). A file once registered keeps its record when it
    /// expires or is deleted, and is returned as it is (the batch still names it, and it is never registered again). A
    /// job's files are its owner's: one registered for another tenant id (by a finalizer that read the job's record just
    /// before <c>TenantRename</c> renamed its owner) is given to <paramref name="owner"/>.
    /// </summary>
    public async Task<StoredFile?> RegisterJobFileAsync(
        string owner, string jobId, string kind, string blob, long? expiresAfterSeconds = null, CancellationToken cancellationToken = default)
    {
        var id = FileIds.ForJobFile(jobId, kind);
        if (await ReadAsync(id, cancellationToken) is { } existing && existing.Owner == owner) return existing;
        if (await RenameOwnerAsync(id, _ => owner, cancellationToken) is { } renamed) return renamed;
        var properties = await blobs.GetPropertiesAsync(blob, cancellationToken);
        if (properties is null) return null;
        var createdAt = properties.LastModified.ToUnixTimeSeconds();
        var file = new StoredFile(id, owner, FilePurpose.BatchOutput, $"{jobId}_{kind}.jsonl", properties.Length,
            createdAt, blob, FileExpiry.ExpiresAt(createdAt, expiresAfterSeconds), properties.LastModified.UtcTicks);
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
                // the listing moves first: a rename stopped before the record's write is done again whole by the next
                if (renamed.DeletedAt is null) await PutEntryAsync(FileIds.ListingBlob(renamed), cancellationToken);
                await blobs.DeleteAsync(FileIds.ListingBlob(file), cancellationToken);
                await blobs.PutBytesAsync(name, JsonSerializer.SerializeToUtf8Bytes(renamed, FilesJson.Options), BlobCondition.IfMatch(properties.ETag), cancellationToken);
                return renamed;
            }
            catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed) { } // changed meanwhile: read it again
        }
    }

    public Task<bool> DeleteContentAsync(StoredFile file, CancellationToken cancellationToken = default) =>
        blobs.DeleteAsync(file.Blob, cancellationToken);

    /// <summary>The listing and expiry entries first, so no file is ever missing from them (an entry whose file was never
    /// saved is skipped by the listing and dropped by the sweep).</summary>
    private async Task SaveAsync(StoredFile file, CancellationToken cancellationToken)
    {
        await PutEntryAsync(FileIds.ListingBlob(file), cancellationToken);
        if (file.ExpiresAt is { } at) await PutEntryAsync(FileIds.ExpiryBlob(file.Id, at), cancellationToken);
        try
        {
            await blobs.PutBytesAsync(FileIds.MetadataBlob(file.Id), JsonSerializer.SerializeToUtf8Bytes(file, FilesJson.Options),
                BlobCondition.IfNotExists, cancellationToken);
        }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed) { } // registered concurrently: same content
    }

    /// <summary>Writes an empty marker blob; one already there is the same.</summary>
    private async Task PutEntryAsync(string name, CancellationToken cancellationToken)
    {
        try { await blobs.PutBytesAsync(name, [], BlobCondition.IfNotExists, cancellationToken); }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed) { }
    }
}

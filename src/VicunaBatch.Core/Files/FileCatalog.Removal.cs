using System.Runtime.CompilerServices;
using System.Text.Json;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Files;

/// <summary>
/// Deletion and expiry. A removal writes its record (<see cref="FileIds.RemovalBlob"/>) first, then the file stops being
/// one (its metadata deleted; a job file's kept as a tombstone), its listing and expiry entries go, and its content goes
/// once no batch holds it (<see cref="HoldAsync"/>): a file deleted while a batch made from it runs keeps its content for
/// that batch, and the sweep (<c>FileSweeper</c>) finishes the removal when the batch has ended. Each step is
/// idempotent, so a process stopped anywhere leaves a record the next sweep finishes.
/// </summary>
public sealed partial class FileCatalog
{
    /// <summary>Deletes the owner's file; false when there is none (another tenant's, expired, already deleted).</summary>
    public async Task<bool> DeleteAsync(string owner, string fileId, CancellationToken cancellationToken = default)
    {
        if (await GetAsync(owner, fileId, cancellationToken) is not { } file) return false;
        await RemoveAsync(file, cancellationToken);
        return true;
    }

    /// <summary>Removes every file whose <c>expires_at</c> has come; returns how many. Reads only the due entries.</summary>
    public async Task<int> ExpireDueAsync(CancellationToken cancellationToken = default)
    {
        var now = Now;
        var due = new List<(long ExpiresAt, string FileId, string Name)>();
        await foreach (var name in blobs.ListAsync(FileIds.ExpiriesPrefix, cancellationToken))
        {
            if (FileIds.OfExpiryBlob(name) is not { } entry) continue;
            if (entry.ExpiresAt > now) break; // names sort by expires_at
            due.Add((entry.ExpiresAt, entry.FileId, name));
        }
        int numExpired = 0;
        foreach (var (expiresAt, fileId, name) in due)
        {
            if (await ReadAsync(fileId, cancellationToken) is { DeletedAt: null } file && file.ExpiresAt == expiresAt)
            {
                await RemoveAsync(file, cancellationToken);
                numExpired++;
            }
            else await blobs.DeleteAsync(name, cancellationToken); // removed already, or an entry whose file was never saved
        }
        return numExpired;
    }

    /// <summary>Holds the file's content for <paramref name="holder"/> (a batch made from it) until <see cref="ReleaseHoldAsync"/>;
    /// false, holding nothing, when the file is no longer there (deleted or expired meanwhile).</summary>
    public async Task<bool> HoldAsync(StoredFile file, string holder, CancellationToken cancellationToken = default)
    {
        await PutEntryAsync(FileIds.HoldBlob(file.Id, holder), cancellationToken);
        // a removal deletes the file before it looks for holds, and this looks for the file after holding: one sees the other
        if (await GetAsync(file.Owner, file.Id, cancellationToken) is not null) return true;
        await ReleaseHoldAsync(file.Id, holder, cancellationToken);
        return false;
    }

    /// <summary>Drops <paramref name="holder"/>'s hold, and finishes the file's removal if it was the last one.</summary>
    public async Task ReleaseHoldAsync(string fileId, string holder, CancellationToken cancellationToken = default)
    {
        await blobs.DeleteAsync(FileIds.HoldBlob(fileId, holder), cancellationToken);
        await TryFinishRemovalAsync(fileId, cancellationToken);
    }

    /// <summary>The files whose removal has not finished: their content is held, or a process stopped in it.</summary>
    public async IAsyncEnumerable<string> PendingRemovalsAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var name in blobs.ListAsync(FileIds.RemovalsPrefix, cancellationToken))
            if (FileIds.IsValid(name[FileIds.RemovalsPrefix.Length..])) yield return name[FileIds.RemovalsPrefix.Length..];
    }

    /// <summary>Who holds the file's content (<see cref="HoldAsync"/>).</summary>
    public async IAsyncEnumerable<string> HoldersAsync(string fileId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var prefix = FileIds.HoldPrefix(fileId);
        await foreach (var name in blobs.ListAsync(prefix, cancellationToken)) yield return name[prefix.Length..];
    }

    /// <summary>Deletes the removed file's content and its removal record unless a hold remains; true when the removal is done.</summary>
    public async Task<bool> TryFinishRemovalAsync(string fileId, CancellationToken cancellationToken = default)
    {
        StoredFile removed;
        try { removed = JsonSerializer.Deserialize<StoredFile>(await blobs.ReadBytesAsync(FileIds.RemovalBlob(fileId), cancellationToken), FilesJson.Options)!; }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.NotFound) { return true; }
        await foreach (var _ in HoldersAsync(fileId, cancellationToken)) return false;
        await blobs.DeleteAsync(removed.Blob, cancellationToken);
        await blobs.DeleteAsync(FileIds.RemovalBlob(fileId), cancellationToken);
        return true;
    }

    private async Task RemoveAsync(StoredFile file, CancellationToken cancellationToken)
    {
        await blobs.PutBytesAsync(FileIds.RemovalBlob(file.Id), JsonSerializer.SerializeToUtf8Bytes(file, FilesJson.Options), BlobCondition.None, cancellationToken);
        var metadata = FileIds.MetadataBlob(file.Id);
        if (file.Purpose == FilePurpose.BatchOutput) // the batch keeps naming it: its record stays, so it is never registered again
            await blobs.PutBytesAsync(metadata, JsonSerializer.SerializeToUtf8Bytes(file with { DeletedAt = Now }, FilesJson.Options), BlobCondition.None, cancellationToken);
        else await blobs.DeleteAsync(metadata, cancellationToken);
        await blobs.DeleteAsync(FileIds.ListingBlob(file), cancellationToken);
        if (file.ExpiresAt is { } at) await blobs.DeleteAsync(FileIds.ExpiryBlob(file.Id, at), cancellationToken);
        await TryFinishRemovalAsync(file.Id, cancellationToken);
    }
}

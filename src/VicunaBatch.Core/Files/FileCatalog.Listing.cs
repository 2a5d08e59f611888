using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Files;

/// <summary>One page of a tenant's files, in the order asked for; <see cref="HasMore"/> when more follow the last.</summary>
public sealed record FilePage(IReadOnlyList<StoredFile> Items, bool HasMore);

public sealed partial class FileCatalog
{
    private volatile bool _listingsBackfilled;

    /// <summary>
    /// Up to <paramref name="limit"/> of the owner's live files with <paramref name="purpose"/> (null: any), by creation,
    /// newest first or (<paramref name="ascending"/>) oldest first, after the file <paramref name="after"/> (OpenAI's
    /// cursor: the last id of the previous page; null: from the start). A cursor that names no file of the owner's (a
    /// deleted upload's record is gone) gives an empty page; one that expired or a deleted job file (whose record stays)
    /// still marks its place. The owner's listing is one blob listing; each file returned is one read.
    /// </summary>
    public async Task<FilePage> ListAsync(
        string owner, string? purpose, string? after, int limit, bool ascending, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        await BackfillListingsAsync(cancellationToken);
        var names = new List<string>();
        await foreach (var name in blobs.ListAsync(FileIds.ListingPrefix(owner), cancellationToken))
            if (FileIds.OfListingBlob(name) is { } entry && (purpose is null || entry.Purpose == purpose)) names.Add(name);
        if (ascending) names.Reverse();

        int start = 0;
        if (after is not null)
        {
            // the cursor's own entry, or where it was
            if (await ReadAsync(after, cancellationToken) is not { } cursor || cursor.Owner != owner) return new FilePage([], HasMore: false);
            var cursorName = FileIds.ListingBlob(cursor);
            start = names.FindIndex(n => ascending ? string.CompareOrdinal(n, cursorName) < 0 : string.CompareOrdinal(n, cursorName) > 0);
            if (start < 0) start = names.Count;
        }
        var items = new List<StoredFile>();
        for (int i = start; i < names.Count; i++)
        {
            if (await GetAsync(owner, FileIds.OfListingBlob(names[i])!.Value.FileId, cancellationToken) is not { } file) continue; // expired, or never saved
            if (items.Count == limit) return new FilePage(items, HasMore: true);
            items.Add(file);
        }
        return new FilePage(items, HasMore: false);
    }

    /// <summary>Once per store: puts every file stored by a version before listings in its owner's listing.</summary>
    private async Task BackfillListingsAsync(CancellationToken cancellationToken)
    {
        if (_listingsBackfilled) return;
        if (!await blobs.ExistsAsync(FileIds.ListingsBackfilledBlob, cancellationToken))
        {
            await foreach (var name in blobs.ListAsync(FileIds.Prefix, cancellationToken))
            {
                if (FileIds.OfMetadataBlob(name) is not { } fileId || await ReadAsync(fileId, cancellationToken) is not { DeletedAt: null } file) continue;
                await PutEntryAsync(FileIds.ListingBlob(file), cancellationToken);
            }
            await PutEntryAsync(FileIds.ListingsBackfilledBlob, cancellationToken);
        }
        _listingsBackfilled = true;
    }
}

using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Files;

/// <summary>
/// File ids: <c>file-</c> + 32 hex digits (unguessable for uploads; derived from the job id for a job's
/// output and error files, so registering them twice yields the same id). Blob layout under <c>files/{id}/</c>,
/// the owner's listing under <c>tenants/{owner}/files/</c>, and the sweep's two queues: files by expiry
/// (<see cref="ExpiriesPrefix"/>) and removals under way (<see cref="RemovalsPrefix"/>).
/// </summary>
public static partial class FileIds
{
    public static string New() => "file-" + Guid.NewGuid().ToString("N");

    public static bool IsValid(string? fileId) => fileId is not null && Pattern().IsMatch(fileId);

    /// <summary>The id of a job's result file (<paramref name="kind"/>: "output" or "errors").</summary>
    public static string ForJobFile(string jobId, string kind) =>
        "file-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{kind}\n{jobId}")))[..32];

    /// <summary>Where every file's blobs are.</summary>
    public const string Prefix = "files/";

    public static string MetadataBlob(string fileId) => $"{Prefix}{fileId}/file.json";

    /// <summary>The file id of a <see cref="MetadataBlob"/> name; null for any other name.</summary>
    public static string? OfMetadataBlob(string name) =>
        name.StartsWith(Prefix, StringComparison.Ordinal) && name.EndsWith("/file.json", StringComparison.Ordinal)
        && name[Prefix.Length..^"/file.json".Length] is var id && IsValid(id) ? id : null;

    /// <summary>An upload's content; keeps a <c>.txt</c> extension so the format travels with the blob name.</summary>
    public static string ContentBlob(string fileId, string filename) =>
        $"files/{fileId}/content{(InputOptions.FormatFromName(filename) == InputFormat.Text ? ".txt" : ".jsonl")}";

    /// <summary>The holds on a file's content: one per batch made from it (<c>{holder}</c> is its job id), so a
    /// file deleted while its batch runs keeps its content until the batch has ended.</summary>
    public static string HoldPrefix(string fileId) => $"{Prefix}{fileId}/holds/";

    public static string HoldBlob(string fileId, string holder) => HoldPrefix(fileId) + holder;

    /// <summary>The owner's listing, newest first: <c>{inverted ticks:D19}_{id}_{purpose}</c>, empty blobs.</summary>
    public static string ListingPrefix(string owner) => $"tenants/{owner}/files/";

    public static string ListingBlob(StoredFile file) =>
        $"{ListingPrefix(file.Owner)}{long.MaxValue - (file.CreatedTicks ?? DateTimeOffset.FromUnixTimeSeconds(file.CreatedAt).UtcTicks):D19}_{file.Id}_{file.Purpose.SnakeCase()}";

    /// <summary>The file id and purpose of a <see cref="ListingBlob"/> name; null for any other name.</summary>
    public static (string FileId, string Purpose)? OfListingBlob(string name)
    {
        var entry = name[(name.LastIndexOf('/') + 1)..];
        const int idStart = 20, idLength = 37; // after "{19 digits}_"; "file-" + 32 hex digits
        if (entry.Length <= idStart + idLength + 1 || entry[idStart - 1] != '_' || entry[idStart + idLength] != '_') return null;
        var id = entry.Substring(idStart, idLength);
        return IsValid(id) ? (id, entry[(idStart + idLength + 1)..]) : null;
    }

    /// <summary>Files that expire, by when: <c>{expires_at:D12}_{id}</c>, empty blobs, so a sweep reads only the due ones.</summary>
    public const string ExpiriesPrefix = "file_expiries/";

    public static string ExpiryBlob(string fileId, long expiresAt) => $"{ExpiriesPrefix}{expiresAt:D12}_{fileId}";

    /// <summary>When and which file an <see cref="ExpiryBlob"/> name says; null for any other name.</summary>
    public static (long ExpiresAt, string FileId)? OfExpiryBlob(string name)
    {
        var entry = name[ExpiriesPrefix.Length..];
        return entry.Length == 12 + 1 + 37 && entry[12] == '_' && long.TryParse(entry.AsSpan(0, 12), out var at) && IsValid(entry[13..])
            ? (at, entry[13..]) : null;
    }

    /// <summary>Removals under way (a deleted or expired file whose content a running batch still reads, or a removal a
    /// process stopped in): the removed <see cref="StoredFile"/>, so the sweep can finish what it names.</summary>
    public const string RemovalsPrefix = "file_removals/";

    public static string RemovalBlob(string fileId) => RemovalsPrefix + fileId;

    /// <summary>Written once every file of versions before listings is in its owner's listing.</summary>
    public const string ListingsBackfilledBlob = "file_listings_backfilled";

    [GeneratedRegex("^file-[0-9a-f]{32}$")]
    private static partial Regex Pattern();
}

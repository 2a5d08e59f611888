using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Files;

/// <summary>What a file is for (OpenAI's <c>purpose</c>, snake_case on the wire).</summary>
public enum FilePurpose
{
    Batch,
    BatchOutput,
}

/// <summary>
/// A file's metadata, stored beside its content. <see cref="Owner"/> is the tenant that may see it;
/// <see cref="Blob"/> is where the content lives (an upload's own blob, or a finished job's output).
/// </summary>
public sealed record StoredFile(string Id, string Owner, FilePurpose Purpose, string Filename, long Bytes, long CreatedAt, string Blob)
{
    /// <summary>How the content is read as batch input: <c>.txt</c> → one prompt per line, else JSONL.</summary>
    public InputFormat Format => InputOptions.FormatFromName(Filename);
}

/// <summary>
/// File ids: <c>file-</c> + 32 hex digits (unguessable for uploads; derived from the job id for a job's
/// output and error files, so registering them twice yields the same id). Blob layout under <c>files/{id}/</c>.
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

    [GeneratedRegex("^file-[0-9a-f]{32}$")]
    private static partial Regex Pattern();
}

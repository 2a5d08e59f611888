using System.Text.RegularExpressions;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Jobs;

/// <summary>
/// Job ids: 1–64 characters of [A-Za-z0-9_-] (they name blob folders and queue message ids);
/// generated ids are <c>batch_</c> + 32 hex digits. Blob layout of a job under <c>jobs/{id}/</c>.
/// </summary>
public static partial class JobIds
{
    public static string New() => "batch_" + Guid.NewGuid().ToString("N");

    public static bool IsValid(string? jobId) => jobId is not null && Pattern().IsMatch(jobId);

    public static string Validate(string jobId) => IsValid(jobId)
        ? jobId
        : throw new ArgumentException($"job id \"{jobId}\" must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'", nameof(jobId));

    /// <summary>Where every job's folder is.</summary>
    public const string JobsPrefix = "jobs/";

    public static string JobBlob(string jobId) => $"jobs/{jobId}/job.json";
    public static string PlanBlob(string jobId) => $"jobs/{jobId}/plan.json";
    public static string PlanShardsBlob(string jobId) => $"jobs/{jobId}/plan_shards.jsonl";
    public static string ValidationErrorsBlob(string jobId) => $"jobs/{jobId}/validation_errors.jsonl";
    public static string ShardReportPrefix(string jobId) => $"jobs/{jobId}/shards/";
    public static string ShardReportBlob(string jobId, int shardIndex) => $"jobs/{jobId}/shards/{shardIndex:D6}.json";
    public static string ShardProgressPrefix(string jobId) => $"jobs/{jobId}/progress/";
    public static string ShardProgressBlob(string jobId, int shardIndex) => $"jobs/{jobId}/progress/{shardIndex:D6}.json";

    /// <summary>The shard index a <see cref="ShardProgressBlob"/> name ends with, or null when it is no such name.</summary>
    public static int? ShardIndexOf(string blobName) =>
        Path.GetFileNameWithoutExtension(blobName) is { Length: 6 } digits && int.TryParse(digits, System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture, out var index) ? index : null;

    public static string ShardAttemptBlob(string jobId, int shardIndex) => $"jobs/{jobId}/attempts/{shardIndex:D6}.json";
    public static string OutputBlob(string jobId) => $"jobs/{jobId}/output.jsonl";
    public static string ErrorsBlob(string jobId) => $"jobs/{jobId}/errors.jsonl";

    /// <summary>Empty; written once the ended job's webhook event is in the outbox (<c>JobSettler</c>).</summary>
    public static string AnnouncedBlob(string jobId) => $"jobs/{jobId}/announced";

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex Pattern();
}

/// <summary>
/// What validation found, stored at <see cref="JobIds.PlanBlob"/> for the finalizer and progress. The shards it cut
/// are recorded beside it, one per line, at <see cref="JobIds.PlanShardsBlob"/> (written first: a plan that exists is
/// complete), so nothing cuts them again from the input; this record stays small because progress reads it often.
/// </summary>
public sealed record JobPlan(string InputBlob, InputFormat Format, int NumLines, int NumRequests, int NumInvalid, int NumShards)
{
    [System.Text.Json.Serialization.JsonIgnore]
    public int NumTotal => NumRequests + NumInvalid;
}

using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;

namespace VicunaBatch.Core.Webhooks;

public enum WebhookEventType
{
    BatchCompleted,
    BatchFailed,
    BatchCancelled,
    BatchExpired,
}

/// <summary><c>data</c> of a batch event.</summary>
public sealed record WebhookEventData(string Id, JobStatus Status, RequestCounts RequestCounts, string? OutputFileId);

/// <summary>
/// A terminal batch event: <c>{id, object:"event", type, created_at, data:{id, status, request_counts, output_file_id}}</c>.
/// Deterministic for a given job: the id is derived from job id and type, <c>created_at</c> is the job's
/// terminal timestamp, so re-enqueueing produces the same message id and byte-identical body.
/// </summary>
public sealed record WebhookEvent(string Id, string Type, long CreatedAt, WebhookEventData Data)
{
    public string Object { get; init; } = "event";

    /// <summary>The wire name: <c>batch.completed</c>, <c>batch.failed</c>, …</summary>
    public static string WireName(WebhookEventType type) => type switch
    {
        WebhookEventType.BatchCompleted => "batch.completed",
        WebhookEventType.BatchFailed => "batch.failed",
        WebhookEventType.BatchCancelled => "batch.cancelled",
        WebhookEventType.BatchExpired => "batch.expired",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>The event a job in <paramref name="status"/> emits; null for non-terminal statuses.</summary>
    public static WebhookEventType? TypeFor(JobStatus status) => status switch
    {
        JobStatus.Completed => WebhookEventType.BatchCompleted,
        JobStatus.Failed => WebhookEventType.BatchFailed,
        JobStatus.Cancelled => WebhookEventType.BatchCancelled,
        JobStatus.Expired => WebhookEventType.BatchExpired,
        _ => null,
    };

    /// <summary>Whether the job's webhook subscribes to <paramref name="type"/>; a null or empty
    /// <see cref="WebhookSettings.Events"/> subscribes to all terminal events.</summary>
    public static bool IsSubscribed(WebhookSettings webhook, WebhookEventType type) =>
        webhook.Events is not { Count: > 0 } events || events.Contains(WireName(type), StringComparer.Ordinal);

    /// <summary><c>evt_</c> + 32 hex digits of SHA-256("{jobId}/{type}").</summary>
    public static string IdFor(string jobId, WebhookEventType type) =>
        "evt_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{jobId}/{WireName(type)}")))[..32];

    /// <summary>The terminal event of <paramref name="job"/>.</summary>
    /// <exception cref="ArgumentException">The job is not in a terminal status.</exception>
    public static WebhookEvent For(BatchJob job)
    {
        var type = TypeFor(job.Status)
            ?? throw new ArgumentException($"job {job.Id} is {job.Status.SnakeCase()}, not terminal: no webhook event", nameof(job));
        long createdAt = type switch
        {
            WebhookEventType.BatchCompleted => job.CompletedAt,
            WebhookEventType.BatchFailed => job.FailedAt,
            WebhookEventType.BatchCancelled => job.CancelledAt,
            _ => job.ExpiredAt,
        } ?? job.CreatedAt;
        return new WebhookEvent(IdFor(job.Id, type), WireName(type), createdAt,
            new WebhookEventData(job.Id, job.Status, job.RequestCounts, job.OutputFileId));
    }

    /// <summary>The body as sent (compact JSON, snake_case, <c>object</c> second).</summary>
    public string ToJson() => JsonSerializer.Serialize(new Wire(Id, Object, Type, CreatedAt, Data), WebhooksJson.Options);

    internal sealed record Wire(string Id, string Object, string Type, long CreatedAt, WebhookEventData Data);
}

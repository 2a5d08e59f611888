using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Webhooks;

public enum WebhookAttemptOutcome
{
    /// <summary>The receiver answered 2xx.</summary>
    Delivered,
    /// <summary>Failed; another attempt is scheduled.</summary>
    Retrying,
    /// <summary>The receiver answered 410 Gone: no more attempts.</summary>
    Disabled,
    /// <summary>Failed and the retry schedule is used up.</summary>
    GaveUp,
    /// <summary>The URL policy refused the URL at delivery time; nothing was sent.</summary>
    Rejected,
}

/// <summary>One line of <c>jobs/{id}/webhook_deliveries.jsonl</c>: one delivery attempt.</summary>
public sealed record WebhookAttempt(
    string EventId, string EventType, int Attempt, DateTimeOffset At, int? StatusCode, string? Error,
    WebhookAttemptOutcome Outcome, DateTimeOffset? NextAttemptAt)
{
    /// <summary>True when no further attempt will follow for this event.</summary>
    public bool IsFinal => Outcome != WebhookAttemptOutcome.Retrying;
}

/// <summary>The per-job delivery log, appended with optimistic concurrency (ETag) on the blob store.</summary>
public sealed class WebhookDeliveryLog(IBlobStore blobs)
{
    private const int MaxAppendTries = 8;

    public static string BlobName(string jobId) => $"jobs/{jobId}/webhook_deliveries.jsonl";

    /// <summary>Every attempt recorded for the job, oldest first; empty when none.</summary>
    public async Task<IReadOnlyList<WebhookAttempt>> ReadAsync(string jobId, CancellationToken cancellationToken = default) =>
        (await ReadWithETagAsync(jobId, cancellationToken)).Attempts;

    public async Task AppendAsync(string jobId, WebhookAttempt attempt, CancellationToken cancellationToken = default)
    {
        var line = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(attempt, WebhooksJson.Options) + "\n");
        for (int tries = 1; ; tries++)
        {
            var (content, etag, _) = await ReadWithETagAsync(jobId, cancellationToken);
            var condition = etag is null ? BlobCondition.IfNotExists : BlobCondition.IfMatch(etag);
            try
            {
                await blobs.PutBytesAsync(BlobName(jobId), [.. content, .. line], condition, cancellationToken);
                return;
            }
            catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed && tries < MaxAppendTries) { }
        }
    }

    private async Task<(byte[] Content, string? ETag, IReadOnlyList<WebhookAttempt> Attempts)> ReadWithETagAsync(string jobId, CancellationToken cancellationToken)
    {
        var name = BlobName(jobId);
        for (int tries = 1; ; tries++)
        {
            if (await blobs.GetPropertiesAsync(name, cancellationToken) is not { } properties) return ([], null, []);
            byte[] content;
            try { content = await blobs.ReadBytesAsync(name, cancellationToken); }
            catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.NotFound && tries < MaxAppendTries) { continue; }
            // The ETag read before the content: if the blob changed in between, the conditional put fails and we re-read.
            var attempts = Encoding.UTF8.GetString(content).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => JsonSerializer.Deserialize<WebhookAttempt>(l, WebhooksJson.Options)!).ToList();
            return (content, properties.ETag, attempts);
        }
    }
}

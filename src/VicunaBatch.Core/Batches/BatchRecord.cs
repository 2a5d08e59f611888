using VicunaBatch.Core.Files;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Core.Batches;

/// <summary>
/// Who owns a batch and which file it was created from, stored at <c>jobs/{id}/owner.json</c> beside the job
/// (the job itself keeps the input blob name, which the submitter and shards read). <see cref="OutputExpiresAfter"/>:
/// the batch's <c>output_expires_after</c> seconds, applied to its output and error files; null when none.
/// </summary>
public sealed record BatchRecord(string JobId, string Owner, string InputFileId, long CreatedAt, long? OutputExpiresAfter = null)
{
    public static string Blob(string jobId) => $"jobs/{JobIds.Validate(jobId)}/owner.json";

    /// <summary>The job's webhook signing secret (<c>whsec_…</c>), kept apart from the job document so that
    /// reading or returning a job never exposes it. Read it with <see cref="TenantBatches.GetWebhookSecretAsync"/>.</summary>
    public static string WebhookSecretBlob(string jobId) => $"jobs/{JobIds.Validate(jobId)}/webhook_secret";

    /// <summary>Per-tenant index entry; names sort newest first (inverted creation ticks, then the id).</summary>
    public static string IndexPrefix(string owner) => $"tenants/{owner}/batches/";

    public static string IndexBlob(string owner, string jobId, DateTimeOffset createdAt) =>
        $"{IndexPrefix(owner)}{long.MaxValue - createdAt.UtcTicks:D19}_{jobId}";

    public static string JobIdOfIndexBlob(string name) => name[(name.LastIndexOf('/') + 1 + 20)..];
}

/// <summary>A batch to create for a tenant from one of its files.</summary>
public sealed record BatchCreation(string Owner, StoredFile InputFile, BatchEndpoint Endpoint)
{
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    public WebhookSettings? Webhook { get; init; }

    /// <summary>Signing secret for <see cref="Webhook"/>; required when a webhook is set.</summary>
    public string? WebhookSecret { get; init; }

    public TimeSpan CompletionWindow { get; init; } = TimeSpan.FromHours(24);

    /// <summary>Why the input file is refused as a whole (<see cref="JobSubmission.InvalidInput"/>): the batch is created
    /// and fails validation with these errors. Null: it runs.</summary>
    public IReadOnlyList<JobError>? InvalidInput { get; init; }

    /// <summary>With <see cref="InvalidInput"/>: the model the refused lines name (<see cref="JobSubmission.InvalidInputModel"/>).</summary>
    public string? InvalidInputModel { get; init; }

    /// <summary>OpenAI's <c>output_expires_after.seconds</c>: the output and error files expire this long after they are
    /// written (<see cref="FileExpiry"/>'s bounds); null: they never do.</summary>
    public long? OutputExpiresAfterSeconds { get; init; }
}

/// <summary>One page of a tenant's batches, newest first.</summary>
public sealed record BatchPage(IReadOnlyList<(BatchJob Job, BatchRecord Record)> Items, bool HasMore);

public enum CancelOutcome
{
    NotFound,
    /// <summary>The job is already terminal (or finalizing): nothing to cancel.</summary>
    NotCancellable,
    Cancelling,
}

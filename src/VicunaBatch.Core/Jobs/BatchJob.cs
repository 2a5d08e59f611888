namespace VicunaBatch.Core.Jobs;

/// <summary>Job statuses of the OpenAI batch object (snake_case on the wire).</summary>
public enum JobStatus
{
    Validating,
    InProgress,
    Finalizing,
    Completed,
    Failed,
    Expired,
    Cancelling,
    Cancelled,
}

public sealed record RequestCounts(int Total, int Completed, int Failed);

public sealed record BatchUsage(long InputTokens, long OutputTokens, long TotalTokens)
{
    public static readonly BatchUsage Zero = new(0, 0, 0);
}

/// <summary>Where and for which events the completion webhook goes (events: batch.completed, …).</summary>
public sealed record WebhookSettings(string Url, IReadOnlyList<string> Events);

/// <summary>A running job's progress; counts grow per finished shard.</summary>
public sealed record JobProgress(int Total, int Completed, int Failed, long InputTokens, long OutputTokens, int ShardsDone, int ShardsTotal);

public sealed record JobError(string Code, string Message, string? Param, int? Line);

public sealed record JobErrors(IReadOnlyList<JobError> Data)
{
    public string Object { get; init; } = "list";
}

/// <summary>
/// The OpenAI batch object plus <c>progress</c> and <c>webhook</c>. Serialise with
/// <see cref="JobsJson.Options"/> (snake_case, nulls written). Timestamps are Unix seconds.
/// Change <see cref="Status"/> only through <see cref="JobStateMachine"/>.
/// </summary>
public sealed class BatchJob
{
    public required string Id { get; init; }
    public string Object { get; init; } = "batch";
    public required string Endpoint { get; set; }

    /// <summary>The served model the batch runs on (<see cref="ServedModels"/>); null for a job from before models were
    /// named, or one that failed before its lines named one.</summary>
    public string? Model { get; set; }

    public JobErrors? Errors { get; set; }
    public required string InputFileId { get; init; }
    public string CompletionWindow { get; init; } = "24h";
    public JobStatus Status { get; set; } = JobStatus.Validating;
    public string? OutputFileId { get; set; }
    public string? ErrorFileId { get; set; }
    public long CreatedAt { get; init; }
    public long? InProgressAt { get; set; }
    public long? ExpiresAt { get; set; }
    public long? FinalizingAt { get; set; }
    public long? CompletedAt { get; set; }
    public long? FailedAt { get; set; }
    public long? ExpiredAt { get; set; }
    public long? CancellingAt { get; set; }
    public long? CancelledAt { get; set; }
    public RequestCounts RequestCounts { get; set; } = new(0, 0, 0);
    public BatchUsage Usage { get; set; } = BatchUsage.Zero;
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    public JobProgress? Progress { get; set; }
    public WebhookSettings? Webhook { get; init; }
}

namespace VicunaBatch.Core.Services;

/// <summary>Options of <see cref="ShardProcessor"/>.</summary>
public sealed class ShardProcessorOptions
{
    /// <summary>
    /// A shard whose last this-many deliveries in a row made no progress (no request checkpointed) is poison: it is
    /// dead-lettered unprocessed and its requests become error lines. Restarts that let requests finish, and deliveries
    /// given back on a graceful stop, never count (<see cref="ShardAttempts"/>). Default 5.
    /// </summary>
    public int MaxDeliveriesWithoutProgress { get; init; } = 5;

    /// <summary>
    /// A shard delivered this often (its message's delivery count) goes on as a fresh message instead of running, so a
    /// queue that dead-letters by delivery count (Service Bus: 5 in infra) never takes a shard that is making progress.
    /// Keep it below that count. Default 4.
    /// </summary>
    public int ResendAfterDeliveries { get; init; } = 4;

    /// <summary>How often the message lock is renewed while the shard runs; <see cref="TimeSpan.Zero"/>
    /// disables renewal. Default 20 s (a third of the default SQLite queue lock of 60 s).</summary>
    public TimeSpan LockRenewalInterval { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>How often, at most, a running shard rewrites its progress record (its finished requests' counts and
    /// tokens, which the batch object shows before the shard's report); <see cref="TimeSpan.Zero"/>: after every request.
    /// Default 1 s: counts move per request while a shard costs at most one small blob write a second.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(1);

    public void Validate()
    {
        if (MaxDeliveriesWithoutProgress < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxDeliveriesWithoutProgress), MaxDeliveriesWithoutProgress, "must be >= 1");
        if (ResendAfterDeliveries < 2) throw new ArgumentOutOfRangeException(nameof(ResendAfterDeliveries), ResendAfterDeliveries, "must be >= 2");
        if (LockRenewalInterval < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(LockRenewalInterval), LockRenewalInterval, "must be >= 0");
        if (ProgressInterval < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(ProgressInterval), ProgressInterval, "must be >= 0");
    }
}

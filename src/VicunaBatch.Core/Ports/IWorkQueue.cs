namespace VicunaBatch.Core.Ports;

/// <summary>
/// A message to send. A queue ignores a message whose id is still queued, waiting or locked (duplicate detection), except
/// a Storage queue, which has none: every send is queued (its consumers are idempotent). Once the message is settled,
/// SQLite queues the id again; Service Bus goes on dropping it for its duplicate-detection window (the infra's: 1 h).
/// </summary>
public sealed record OutgoingMessage(string MessageId, string Body);

/// <summary>A received, locked message. <see cref="DeliveryCount"/> is 1 on the first delivery.</summary>
public sealed record ReceivedMessage(string MessageId, string Body, int DeliveryCount, string LockToken, DateTimeOffset LockedUntil)
{
    /// <summary>When the message was first sent, where the queue knows it (queue-lag metrics).</summary>
    public DateTimeOffset? EnqueuedAt { get; init; }
}

/// <summary>
/// Peek-lock work queue (Service Bus semantics). Settling (complete, abandon, dead-letter, renew) a message whose lock
/// expired, that was settled, or that was delivered again since throws <see cref="WorkQueueException"/> with
/// <see cref="WorkQueueFailure.LockLost"/>. What every backend does is the work-queue contract
/// (tests/VicunaBatch.Contracts/WorkQueueContract.cs), run against each. The platforms differ in these, and callers
/// must allow for each:
/// <list type="bullet">
/// <item>order: SQLite and Service Bus deliver in send order; a Storage queue's order is best effort;</item>
/// <item>duplicates: a Storage queue has no duplicate detection (see <see cref="OutgoingMessage"/>);</item>
/// <item>expiry: a Storage queue's lock (its pop receipt) is lost only when the message is received again or settled,
/// not when the lock duration passes, so a late settle or renew still succeeds while no other receiver has taken it
/// (a late holder may finish; it must not count on LockLost to learn that it was late);</item>
/// <item>delayed abandon: Service Bus has none (<see cref="NotSupportedException"/>);</item>
/// <item>receive: a Service Bus receive waits up to its ReceiveWaitTime for a first message (AMQP has no receive
/// that answers at once); the others answer at once.</item>
/// </list>
/// </summary>
public interface IWorkQueue
{
    Task SendAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken = default);

    /// <summary>Claims up to <paramref name="maxMessages"/> visible messages, locking each for the queue's lock duration, with
    /// a new lock token each. Returns an empty list when none are visible: at once, except on Service Bus, whose receive
    /// waits up to its ReceiveWaitTime for a first message.</summary>
    Task<IReadOnlyList<ReceivedMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken = default);

    /// <summary>Removes the message: its work is done.</summary>
    Task CompleteAsync(ReceivedMessage message, CancellationToken cancellationToken = default);

    /// <summary>Releases the lock now so the message is redelivered.</summary>
    Task AbandonAsync(ReceivedMessage message, CancellationToken cancellationToken = default);

    /// <summary>Releases the lock so the message is redelivered after <paramref name="delay"/> (a scheduled
    /// retry: Storage queue visibility timeout). Keeps the message id, so duplicate detection still holds, and
    /// the next delivery's <see cref="ReceivedMessage.DeliveryCount"/> is one higher. A queue without delayed
    /// redelivery supports only a zero delay (this default) and throws <see cref="NotSupportedException"/> otherwise.</summary>
    Task AbandonAsync(ReceivedMessage message, TimeSpan delay, CancellationToken cancellationToken = default) =>
        delay <= TimeSpan.Zero ? AbandonAsync(message, cancellationToken)
            : Task.FromException(new NotSupportedException($"{GetType().Name} cannot delay redelivery"));

    /// <summary>Moves the message to the dead-letter store with a reason.</summary>
    Task DeadLetterAsync(ReceivedMessage message, string reason, CancellationToken cancellationToken = default);

    /// <summary>Extends the lock to the lock duration from now; returns the new expiry.</summary>
    Task<DateTimeOffset> RenewLockAsync(ReceivedMessage message, CancellationToken cancellationToken = default);

    /// <summary>
    /// A receiver's wait after an empty <see cref="ReceiveAsync"/>: returns after <paramref name="maxWait"/>, or earlier
    /// when the queue knows a message may have arrived (a local queue wakes its receivers in the same process at once).
    /// Receive again after it; it never claims a message. Default: waits <paramref name="maxWait"/>.
    /// </summary>
    Task WaitForMessagesAsync(TimeSpan maxWait, CancellationToken cancellationToken = default) => Task.Delay(maxWait, cancellationToken);
}

public enum WorkQueueFailure
{
    /// <summary>The lock expired or the message was settled by another receiver.</summary>
    LockLost,
    Unavailable,
}

/// <summary>The one exception of the queue boundary.</summary>
public sealed class WorkQueueException(WorkQueueFailure reason, string messageId, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public WorkQueueFailure Reason { get; } = reason;
    public string MessageId { get; } = messageId;
    public bool IsTransient => Reason == WorkQueueFailure.Unavailable;
}

namespace VicunaBatch.Core.Ports;

/// <summary>A message to send. A queue ignores a message whose id is already waiting (duplicate detection).</summary>
public sealed record OutgoingMessage(string MessageId, string Body);

/// <summary>A received, locked message. <see cref="DeliveryCount"/> is 1 on the first delivery.</summary>
public sealed record ReceivedMessage(string MessageId, string Body, int DeliveryCount, string LockToken, DateTimeOffset LockedUntil)
{
    /// <summary>When the message was first sent, where the queue knows it (queue-lag metrics).</summary>
    public DateTimeOffset? EnqueuedAt { get; init; }
}

/// <summary>Peek-lock work queue (Service Bus semantics). Settling a message whose lock expired
/// throws <see cref="WorkQueueException"/> with <see cref="WorkQueueFailure.LockLost"/>.</summary>
public interface IWorkQueue
{
    Task SendAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken = default);

    /// <summary>Claims up to <paramref name="maxMessages"/> visible messages, locking each for the queue's lock duration.
    /// Returns an empty list when none are visible (does not wait).</summary>
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

    /// <summary>Extends the lock by the lock duration; returns the new expiry.</summary>
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

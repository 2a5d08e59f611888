using VicunaBatch.Core.Ports;

namespace VicunaBatch.Testing;

/// <summary>The real queue, counting the messages completed through it.</summary>
public sealed class CompletionCountingQueue(IWorkQueue inner, int expected) : IWorkQueue
{
    private readonly TaskCompletionSource _allCompleted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _numCompleted;

    /// <summary>Done once <c>expected</c> messages were completed.</summary>
    public Task AllCompleted => _allCompleted.Task;

    public async Task CompleteAsync(ReceivedMessage message, CancellationToken cancellationToken = default)
    {
        await inner.CompleteAsync(message, cancellationToken);
        if (Interlocked.Increment(ref _numCompleted) == expected) _allCompleted.TrySetResult();
    }

    public Task SendAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken = default) => inner.SendAsync(messages, cancellationToken);
    public Task<IReadOnlyList<ReceivedMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken = default) => inner.ReceiveAsync(maxMessages, cancellationToken);
    public Task AbandonAsync(ReceivedMessage message, CancellationToken cancellationToken = default) => inner.AbandonAsync(message, cancellationToken);
    public Task AbandonAsync(ReceivedMessage message, TimeSpan delay, CancellationToken cancellationToken = default) => inner.AbandonAsync(message, delay, cancellationToken);
    public Task DeadLetterAsync(ReceivedMessage message, string reason, CancellationToken cancellationToken = default) => inner.DeadLetterAsync(message, reason, cancellationToken);
    public Task<DateTimeOffset> RenewLockAsync(ReceivedMessage message, CancellationToken cancellationToken = default) => inner.RenewLockAsync(message, cancellationToken);
    public Task WaitForMessagesAsync(TimeSpan maxWait, CancellationToken cancellationToken = default) => inner.WaitForMessagesAsync(maxWait, cancellationToken);
}

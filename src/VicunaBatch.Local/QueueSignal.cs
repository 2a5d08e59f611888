using System.Collections.Concurrent;

namespace VicunaBatch.Local;

/// <summary>
/// Wakes the receivers of one SQLite queue in this process when a message may have become visible (sent, abandoned,
/// released), so a local host's loops react at once instead of at their next poll. Other processes still poll.
/// </summary>
internal sealed class QueueSignal
{
    private static readonly ConcurrentDictionary<string, QueueSignal> Signals = new(StringComparer.Ordinal);

    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _version;

    /// <summary>The signal of queue <paramref name="queueName"/> in the database file <paramref name="databasePath"/>.</summary>
    public static QueueSignal For(string databasePath, string queueName) =>
        Signals.GetOrAdd(Path.GetFullPath(databasePath) + "\n" + queueName, _ => new QueueSignal());

    /// <summary>Completes at the next <see cref="Pulse"/>.</summary>
    public Task Next => Volatile.Read(ref _next).Task;

    /// <summary>Pulses so far: a receiver that saw another number has a pulse to act on.</summary>
    public long Version => Interlocked.Read(ref _version);

    public void Pulse()
    {
        Interlocked.Increment(ref _version);
        Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }
}

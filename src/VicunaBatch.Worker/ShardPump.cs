using VicunaBatch.Core;

namespace VicunaBatch.Worker;

/// <summary>How a <see cref="ShardPump"/> drains its queue.</summary>
public sealed class ShardPumpOptions
{
    /// <summary>Shards processed at once; their requests all share the engine. Default 4.</summary>
    public int MaxConcurrentShards { get; init; } = 4;

    /// <summary>Wait between polls of an empty queue. Default 100 ms.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConcurrentShards, 1, nameof(MaxConcurrentShards));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(PollInterval, TimeSpan.Zero, nameof(PollInterval));
    }
}

/// <summary>
/// The worker loop: keeps up to <see cref="ShardPumpOptions.MaxConcurrentShards"/> shard messages in flight through
/// a <see cref="ShardProcessor"/>, so the engine's waiting pool stays full, and reports each settled shard.
/// </summary>
public sealed class ShardPump(IWorkQueue queue, ShardProcessor processor, ShardPumpOptions options)
{
    /// <summary>
    /// Runs until <paramref name="isDone"/> says so (checked whenever a shard settles and when the queue is empty
    /// with nothing in flight) or until cancellation, which abandons the messages in flight.
    /// </summary>
    public async Task RunAsync(
        Func<ShardResult, CancellationToken, Task> onShardSettled,
        Func<CancellationToken, Task<bool>> isDone,
        CancellationToken cancellationToken = default)
    {
        options.Validate();
        var inFlight = new List<Task<ShardResult>>();
        try
        {
            await PumpAsync(inFlight, onShardSettled, isDone, cancellationToken);
        }
        finally
        {
            // on cancellation the processors abandon their messages: let them finish doing so
            await Task.WhenAll(inFlight.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
        }
    }

    private async Task PumpAsync(
        List<Task<ShardResult>> inFlight,
        Func<ShardResult, CancellationToken, Task> onShardSettled,
        Func<CancellationToken, Task<bool>> isDone,
        CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (inFlight.Count < options.MaxConcurrentShards)
            {
                var messages = await queue.ReceiveAsync(options.MaxConcurrentShards - inFlight.Count, cancellationToken);
                inFlight.AddRange(messages.Select(m => processor.ProcessAsync(m, cancellationToken)));
            }
            if (inFlight.Count == 0)
            {
                if (await isDone(cancellationToken))
                {
                    return;
                }
                await Task.Delay(options.PollInterval, cancellationToken);
                continue;
            }
            var wait = Task.Delay(options.PollInterval, cancellationToken);
            var settled = await Task.WhenAny([.. inFlight, wait]);
            if (settled == wait)
            {
                continue;
            }
            var finished = (Task<ShardResult>)settled;
            inFlight.Remove(finished);
            await onShardSettled(await finished, cancellationToken);
            if (inFlight.Count == 0 && await isDone(cancellationToken))
            {
                return;
            }
        }
    }
}

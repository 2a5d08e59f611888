using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Execution;

/// <summary>How a <see cref="ShardPump"/> drains its queue.</summary>
public sealed class ShardPumpOptions
{
    /// <summary>Most shards processed at once; their requests all share the engine. Default 4.</summary>
    public int MaxConcurrentShards { get; init; } = 4;

    /// <summary>
    /// Shards held without asking <see cref="ShardPumpHooks.WantsWork"/> (taken together, as without the hook); more
    /// only while it says so. Default 0: every shard is asked for.
    /// </summary>
    public int MinConcurrentShards { get; init; }

    /// <summary>Wait between polls of an empty queue, and after a transient receive failure. Default 100 ms.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    public void Validate()
    {
        if (MaxConcurrentShards < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxConcurrentShards), MaxConcurrentShards, "must be at least 1");
        }
        if (MinConcurrentShards < 0 || MinConcurrentShards > MaxConcurrentShards)
        {
            throw new ArgumentOutOfRangeException(nameof(MinConcurrentShards), MinConcurrentShards, $"must be in [0, {MaxConcurrentShards}] (MaxConcurrentShards)");
        }
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(PollInterval, TimeSpan.Zero, nameof(PollInterval));
    }
}

/// <summary>What a host adds to a <see cref="ShardPump"/>: the prefetch bound and receive hooks.</summary>
/// <param name="WantsWork">Take another shard now? (prefetch bound). Null: fill up to MaxConcurrentShards at once.</param>
/// <param name="Received">Each message received (queue-lag metrics).</param>
/// <param name="ReceiveFailed">A transient receive failure; the pump retries after the poll interval.</param>
public sealed record ShardPumpHooks(
    Func<bool>? WantsWork = null, Action<ReceivedMessage>? Received = null, Action<WorkQueueException>? ReceiveFailed = null);

/// <summary>
/// The worker loop: keeps shard messages in flight through a <see cref="ShardProcessor"/> — up to
/// <see cref="ShardPumpOptions.MaxConcurrentShards"/>, and, with <see cref="ShardPumpHooks.WantsWork"/>, beyond
/// <see cref="ShardPumpOptions.MinConcurrentShards"/> only while the engine wants more (one shard at a time, each one's requests all handed to the executor before demand is read
/// again) — and reports each settled
/// shard. A transient receive failure (<see cref="WorkQueueException.IsTransient"/>) is reported and retried after
/// the poll interval, while the shards in flight go on; any other failure ends the loop.
/// </summary>
public sealed class ShardPump(IWorkQueue queue, ShardProcessor processor, ShardPumpOptions options, ShardPumpHooks? hooks = null)
{
    private readonly Func<bool>? _wantsWork = hooks?.WantsWork;

    /// <summary>
    /// Runs until <paramref name="isDone"/> says so (checked whenever nothing is in flight: when the last shard held
    /// settles, and at each poll that takes none), until <paramref name="stopTaking"/> is cancelled and every shard
    /// held has settled (a graceful stop: no new shard is taken), or until cancellation, which abandons the messages
    /// in flight.
    /// </summary>
    public async Task RunAsync(
        Func<ShardResult, CancellationToken, Task> onShardSettled,
        Func<CancellationToken, Task<bool>> isDone,
        CancellationToken stopTaking = default,
        CancellationToken cancellationToken = default)
    {
        options.Validate();
        var inFlight = new List<Task<ShardResult>>();
        try
        {
            await PumpAsync(inFlight, onShardSettled, isDone, stopTaking, cancellationToken);
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
        CancellationToken stopTaking,
        CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var belowMin = inFlight.Count < options.MinConcurrentShards;
            var taking = !stopTaking.IsCancellationRequested;
            if (taking && inFlight.Count < options.MaxConcurrentShards && (belowMin || (_wantsWork?.Invoke() ?? true)))
            {
                // one at a time while prefetching, so the engine's demand is re-read after each shard joins
                var bulk = _wantsWork is null || belowMin;
                var wanted = _wantsWork is null ? options.MaxConcurrentShards - inFlight.Count
                    : belowMin ? options.MinConcurrentShards - inFlight.Count : 1;
                foreach (var message in await TryReceiveAsync(wanted, cancellationToken))
                {
                    if (bulk)
                    {
                        inFlight.Add(processor.ProcessAsync(message, cancellationToken));
                        continue;
                    }
                    // demand is read again only once this shard's requests are all in the engine
                    var dispatched = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    var processing = processor.ProcessAsync(message, dispatched, cancellationToken);
                    inFlight.Add(processing);
                    await Task.WhenAny(dispatched.Task, processing);
                }
            }
            if (inFlight.Count == 0)
            {
                if (stopTaking.IsCancellationRequested || await isDone(cancellationToken))
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
            if (inFlight.Count == 0 && (stopTaking.IsCancellationRequested || await isDone(cancellationToken)))
            {
                return;
            }
        }
    }

    private async Task<IReadOnlyList<ReceivedMessage>> TryReceiveAsync(int maxMessages, CancellationToken cancellationToken)
    {
        try
        {
            var messages = await queue.ReceiveAsync(maxMessages, cancellationToken);
            foreach (var message in messages) hooks?.Received?.Invoke(message);
            return messages;
        }
        catch (WorkQueueException e) when (e.IsTransient)
        {
            hooks?.ReceiveFailed?.Invoke(e);
            return [];
        }
    }
}

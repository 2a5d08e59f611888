using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Execution;

/// <summary>What a long-running host adds to an <see cref="EngineWorker"/>: health and metrics.</summary>
/// <param name="Received">Each shard message received (queue-lag metrics).</param>
/// <param name="ReceiveFailed">A transient receive failure; the worker retries after its poll interval.</param>
/// <param name="Settled">Each shard as it settles, before its shard-done event is sent.</param>
public sealed record EngineWorkerHooks(
    Action<ReceivedMessage>? Received = null, Action<WorkQueueException>? ReceiveFailed = null, Action<ShardResult>? Settled = null);

/// <summary>
/// The chain every host of an engine runs, assembled here once: the engine's host thread → the request executor → a
/// shard processor per message → the shard pump and its prefetch rule. Each shard that settles with a report
/// (completed, dead-lettered, skipped) is announced as a <see cref="ShardDoneEvent"/> on the transport's shard-done
/// queue, where the finalizer of whichever host reads it (serve's, run's, the Functions app's) ends the job: any number
/// of workers on one transport feed one control plane.
/// </summary>
public sealed class EngineWorker : IAsyncDisposable
{
    private const int MaxPublishAttempts = 5;

    private readonly ShardPorts _ports;
    private readonly EngineWorkerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly EngineWorkerHooks _hooks;
    private readonly ShardPump _pump;

    public EngineWorker(LoadedModel model, ShardPorts ports, EngineWorkerOptions options, TimeProvider time,
        ILogger? logger = null, EngineWorkerHooks? hooks = null)
    {
        options.Validate();
        (_ports, _options, _time, _logger, _hooks) = (ports, options, time, logger ?? NullLogger.Instance, hooks ?? new EngineWorkerHooks());
        Host = new EngineHost(model.Engine, ownsEngine: false);
        Executor = new EngineRequestExecutor(Host, model, ports.Model, options.Defaults, time);
        var processor = new ShardProcessor(ports.Blobs, ports.Checkpoints, ports.Work, ports.Jobs, Executor, options.Input, options.Processor, time);
        var prefetch = new EnginePrefetch(Host, model.Engine.NumSlots, options.PrefetchCapacities);
        _pump = new ShardPump(ports.Work, processor, options.Pump, new ShardPumpHooks(prefetch.WantsWork, _hooks.Received, _hooks.ReceiveFailed));
    }

    /// <summary>The engine's host: requests in flight, and <see cref="EngineHost.StepCompleted"/> for metrics.</summary>
    public EngineHost Host { get; }

    /// <summary>Counts of what ran, and <see cref="EngineRequestExecutor.Generated"/> per request.</summary>
    public EngineRequestExecutor Executor { get; }

    /// <summary>
    /// Takes shards until <paramref name="isDone"/> says so (asked whenever nothing is held), or until
    /// <paramref name="stopTaking"/> is cancelled and the shards held have settled (a graceful stop); cancellation
    /// abandons the shards held to another receiver (their finished requests stay checkpointed).
    /// </summary>
    public Task RunAsync(Func<CancellationToken, Task<bool>> isDone, CancellationToken stopTaking = default, CancellationToken cancellationToken = default) =>
        _pump.RunAsync(OnShardSettledAsync, isDone, stopTaking, cancellationToken);

    private async Task OnShardSettledAsync(ShardResult result, CancellationToken cancellationToken)
    {
        _hooks.Settled?.Invoke(result);
        switch (result.Disposition)
        {
            case ShardDisposition.Abandoned:
                if (result.Error is not null)
                    _logger.LogWarning(result.Error, "shard {ShardId} of job {JobId} failed; released for redelivery", result.Shard?.ShardIndex, result.Shard?.JobId);
                return;
            case ShardDisposition.LockLost:
                _logger.LogWarning("shard {ShardId} of job {JobId}: its lock was lost before it could be settled (held longer than the queue's lock " +
                    "duration without a renewal); whoever holds it now finishes it, {NumExecuted} requests run here stay checkpointed",
                    result.Shard?.ShardIndex, result.Shard?.JobId, result.NumExecuted);
                return;
            case ShardDisposition.Resent:
                _logger.LogInformation("shard {ShardId} of job {JobId} goes on as a fresh message (its message was delivered often; it is making progress)",
                    result.Shard?.ShardIndex, result.Shard?.JobId);
                return;
        }
        if (result.Shard is not { } shard) return; // a malformed message, dead-lettered: no job to tell
        _logger.LogInformation("shard {ShardId} of job {JobId} {Disposition} ({NumExecuted} requests run)",
            shard.ShardIndex, shard.JobId, result.Disposition.SnakeCase(), result.NumExecuted);
        // the event is what makes the finalizer look at the job: retry a queue that is briefly unavailable
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await _ports.ShardDone.SendAsync([new ShardDoneEvent(shard.JobId, shard.ShardIndex).ToMessage()], cancellationToken);
                return;
            }
            catch (WorkQueueException e) when (e.IsTransient && attempt < MaxPublishAttempts)
            {
                _logger.LogWarning(e, "publishing shard {ShardId} of job {JobId} settled failed (attempt {Attempt}); retrying", shard.ShardIndex, shard.JobId, attempt);
                await Task.Delay(TimeSpan.FromSeconds(attempt), _time, cancellationToken);
            }
        }
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}

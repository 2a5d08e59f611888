using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VicunaBatch.Azure;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Worker;

/// <summary>
/// The worker host's loop: loads the model, then drains the work queue into one engine — shards prefetched while
/// the engine's waiting pool is below its capacity, locks renewed, every request checkpointed as it ends — and
/// publishes a <see cref="ShardDoneEvent"/> for each completed or dead-lettered shard. On stop (SIGTERM) it takes
/// no new shard, lets the held ones run for <see cref="WorkerOptions.DrainSeconds"/>, then cancels the rest,
/// whose messages are abandoned for another worker (their finished requests stay checkpointed).
/// </summary>
public sealed class WorkerService(
    WorkerTransport transport, WorkerOptions options, EngineOptions engineOptions, WorkerHealth health, WorkerMetrics metrics,
    IHostApplicationLifetime lifetime, TimeProvider time, ILogger<WorkerService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await RunAsync(stoppingToken);
            health.Stopped();
        }
        catch (Exception e) when (!(e is OperationCanceledException && stoppingToken.IsCancellationRequested))
        {
            logger.LogCritical(e, "worker failed: {Reason}", e.Message);
            health.Failed(e.Message);
            Environment.ExitCode = 1;
            // a stop asked for while the host is still starting makes its start throw: wait until it has started
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
                await started.Task.WaitAsync(stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            lifetime.StopApplication();
        }
    }

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        if (options.ModelSourceUri is { } source)
        {
            var storage = transport.ModelStorage
                ?? throw new InvalidOperationException($"Model:SourceUri {source} needs the Azure transport (the storage account it is in); locally set Model:Path");
            var copied = await BlobModelDownload.From(storage, source, options.ModelPath)
                .EnsureAsync(line => logger.LogInformation("{Progress}", line), stoppingToken);
            logger.LogInformation("model package {ModelPath}: {MiB} MiB copied from {Source}", options.ModelPath, copied >> 20, source);
        }
        logger.LogInformation("loading model {ModelPath}", options.ModelPath);
        using var model = await Task.Run(() => LoadedModel.Open(options.ModelPath, engineOptions), stoppingToken);
        if (model.SlotsNote is { } note) logger.LogWarning("{Note}", note);
        await using var host = new EngineHost(model.Engine, ownsEngine: false);
        host.StepCompleted += metrics.OnStep;
        var executor = new EngineRequestExecutor(host, model, options.Defaults, time);
        executor.Generated += metrics.OnGenerated;
        var processor = new ShardProcessor(transport.Blobs, transport.Checkpoints, transport.WorkQueue, executor, options.Input,
            new ShardProcessorOptions { MaxDeliveries = options.MaxDeliveries, LockRenewalInterval = TimeSpan.FromSeconds(options.LockRenewalSeconds) }, time);
        var capacity = model.Engine.NumSlots;
        var prefetch = new EnginePrefetch(host, capacity, options.PrefetchCapacities);
        var pump = new ShardPump(transport.WorkQueue, processor,
            new ShardPumpOptions { MaxConcurrentShards = options.MaxConcurrentShards, PollInterval = TimeSpan.FromMilliseconds(options.PollIntervalMs) },
            new ShardPumpHooks(
                WantsWork: () => !stoppingToken.IsCancellationRequested && prefetch.WantsWork(),
                Received: message => { health.ReceiveSucceeded(); metrics.OnReceived(message, time.GetUtcNow()); },
                ReceiveFailed: e =>
                {
                    health.ReceiveFailed(e);
                    logger.LogWarning(e, "receiving from the work queue failed; retrying");
                }));
        health.NumRequestsInFlight = () => host.NumInFlight;
        health.Ready(model.Name);
        logger.LogInformation("worker ready: model {Model}, {NumSlots} KV slots, up to {MaxShards} shards held", model.Name, capacity, options.MaxConcurrentShards);

        using var drain = new CancellationTokenSource();
        using var onStop = stoppingToken.Register(() =>
        {
            health.Draining();
            logger.LogInformation("stopping: no new shards; {NumRequests} requests in flight get {DrainSeconds} s to finish",
                host.NumInFlight, options.DrainSeconds);
            drain.CancelAfter(TimeSpan.FromSeconds(options.DrainSeconds));
        });
        try
        {
            await pump.RunAsync(
                (result, ct) => OnShardSettledAsync(result, ct),
                _ => Task.FromResult(stoppingToken.IsCancellationRequested),
                drain.Token);
            logger.LogInformation("drained: every held shard settled");
        }
        catch (OperationCanceledException) when (drain.IsCancellationRequested)
        {
            logger.LogInformation("drain time over: the shards still held were released for redelivery");
        }
    }

    private async Task OnShardSettledAsync(ShardResult result, CancellationToken cancellationToken)
    {
        metrics.OnShardSettled(result.Disposition);
        if (result.Disposition == ShardDisposition.Abandoned)
        {
            if (result.Error is not null)
                logger.LogWarning(result.Error, "shard {ShardId} of job {JobId} failed; released for redelivery", result.Shard?.ShardIndex, result.Shard?.JobId);
            return;
        }
        if (result.Disposition == ShardDisposition.LockLost)
        {
            logger.LogWarning("shard {ShardId} of job {JobId}: its lock was lost before it could be settled (held longer than the queue's lock " +
                "duration without a renewal); whoever holds it now finishes it, {NumExecuted} requests run here stay checkpointed",
                result.Shard?.ShardIndex, result.Shard?.JobId, result.NumExecuted);
            return;
        }
        if (result.Shard is not { } shard) return; // a malformed message, dead-lettered: no job to tell
        logger.LogInformation("shard {ShardId} of job {JobId} {Disposition} ({NumExecuted} requests run)",
            shard.ShardIndex, shard.JobId, result.Disposition.SnakeCase(), result.NumExecuted);
        // the event is what makes the finalizer look at the job: retry a queue that is briefly unavailable
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await transport.ShardDone.SendAsync([new ShardDoneEvent(shard.JobId, shard.ShardIndex).ToMessage()], cancellationToken);
                return;
            }
            catch (WorkQueueException e) when (e.IsTransient && attempt < MaxPublishAttempts)
            {
                logger.LogWarning(e, "publishing shard {ShardId} of job {JobId} settled failed (attempt {Attempt}); retrying", shard.ShardIndex, shard.JobId, attempt);
                await Task.Delay(TimeSpan.FromSeconds(attempt), time, cancellationToken);
            }
        }
    }

    private const int MaxPublishAttempts = 5;
}

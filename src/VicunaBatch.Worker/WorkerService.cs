using Azure.Storage.Blobs;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VicunaBatch.Azure;
using VicunaBatch.Core.Services;
using VicunaBatch.Execution;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Worker;

/// <summary>
/// The worker host's loop: loads the model, then drains the work queue into one engine — shards prefetched while
/// the engine's waiting pool is below its capacity, locks renewed, every request checkpointed as it ends — and
/// publishes a <see cref="ShardDoneEvent"/> for each completed, dead-lettered or skipped shard. On stop (SIGTERM)
/// it takes no new shard, lets the held ones run for <see cref="WorkerOptions.DrainSeconds"/>, then cancels the rest,
/// whose messages are abandoned for another worker (their finished requests stay checkpointed).
/// </summary>
public sealed class WorkerService(
    ShardPorts ports, WorkerOptions options, EngineOptions engineOptions, WorkerHealth health, WorkerMetrics metrics,
    IHostApplicationLifetime lifetime, TimeProvider time, ILogger<WorkerService> logger, BlobServiceClient? modelStorage = null) : BackgroundService
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
            var storage = modelStorage
                ?? throw new InvalidOperationException($"Model:SourceUri {source} needs the Azure transport (the storage account it is in); locally set Model:Path");
            var copied = await BlobModelDownload.From(storage, source, options.ModelPath)
                .EnsureAsync(line => logger.LogInformation("{Progress}", line), stoppingToken);
            logger.LogInformation("model package {ModelPath}: {MiB} MiB copied from {Source}", options.ModelPath, copied >> 20, source);
        }
        logger.LogInformation("loading model {ModelPath}", options.ModelPath);
        using var model = await Task.Run(() => LoadedModel.Open(options.ModelPath, engineOptions), stoppingToken);
        if (model.SlotsNote is { } note) logger.LogWarning("{Note}", note);
        await using var worker = new EngineWorker(model, ports, options.EngineWorker(), time, logger, new EngineWorkerHooks(
            Received: message => { health.ReceiveSucceeded(); metrics.OnReceived(message, time.GetUtcNow()); },
            ReceiveFailed: e =>
            {
                health.ReceiveFailed(e);
                logger.LogWarning(e, "receiving from the work queue failed; retrying");
            },
            Settled: result => metrics.OnShardSettled(result.Disposition)));
        worker.Host.StepCompleted += metrics.OnStep;
        worker.Executor.Generated += metrics.OnGenerated;
        health.NumRequestsInFlight = () => worker.Host.NumInFlight;
        health.Ready(options.ServedName);
        logger.LogInformation("worker ready: model {Model} ({ModelPath}), {NumSlots} KV slots, up to {MaxShards} shards held",
            options.ServedName, options.ModelPath, model.Engine.NumSlots, options.MaxConcurrentShards);

        using var drain = new CancellationTokenSource();
        using var onStop = stoppingToken.Register(() =>
        {
            health.Draining();
            logger.LogInformation("stopping: no new shards; {NumRequests} requests in flight get {DrainSeconds} s to finish",
                worker.Host.NumInFlight, options.DrainSeconds);
            drain.CancelAfter(TimeSpan.FromSeconds(options.DrainSeconds));
        });
        try
        {
            await worker.RunAsync(_ => Task.FromResult(false), stopTaking: stoppingToken, cancellationToken: drain.Token);
            logger.LogInformation("drained: every held shard settled");
        }
        catch (OperationCanceledException) when (drain.IsCancellationRequested)
        {
            logger.LogInformation("drain time over: the shards still held were released for redelivery");
        }
    }
}

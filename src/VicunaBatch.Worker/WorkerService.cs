using Azure.Storage.Blobs;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VicunaBatch.Azure;
using VicunaBatch.Core.Services;
using VicunaBatch.Execution;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;

namespace VicunaBatch.Worker;

/// <summary>
/// The worker host's loop: loads the model once per engine (one per GPU, <see cref="WorkerEngines"/>), in parallel, then
/// drains the work queue into the engines (<see cref="EngineWorkers"/>) — each taking shards while its waiting pool is
/// below its capacity, locks renewed, every request checkpointed as it ends — and
/// publishes a <see cref="ShardDoneEvent"/> for each completed, dead-lettered or skipped shard. On stop (SIGTERM)
/// it takes no new shard, lets the held ones run for <see cref="WorkerOptions.DrainSeconds"/>, then cancels the rest,
/// whose messages are abandoned for another worker (their finished requests stay checkpointed).
/// </summary>
public sealed class WorkerService(
    ShardPorts ports, WorkerOptions options, WorkerEngines engines, WorkerHealth health, WorkerMetrics metrics,
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
        var models = await LoadModelAsync(stoppingToken);
        try
        {
            await RunAsync(models, stoppingToken);
        }
        finally
        {
            foreach (var model in models) model.Dispose();
        }
    }

    private async Task RunAsync(IReadOnlyList<LoadedModel> models, CancellationToken stoppingToken)
    {
        foreach (var note in LoadedModel.SlotsNotes(models)) logger.LogWarning("{Note}", note);
        await using var worker = new EngineWorkers(models, ports, options.EngineWorker(), time, logger, _ => new EngineWorkerHooks(
            Received: message => { health.ReceiveSucceeded(); metrics.OnReceived(message, time.GetUtcNow()); },
            ReceiveFailed: e =>
            {
                health.ReceiveFailed(e);
                logger.LogWarning(e, "receiving from the work queue failed; retrying");
            },
            Settled: result => metrics.OnShardSettled(result.Disposition)));
        metrics.UseEngines(worker.Labels);
        for (var i = 0; i < worker.All.Count; i++)
        {
            var engine = i;
            worker.All[i].Host.StepCompleted += e => metrics.OnStep(engine, e);
            worker.All[i].Executor.Generated += result => metrics.OnGenerated(engine, result);
        }
        health.NumRequestsInFlight = () => worker.NumInFlight;
        health.EngineRequestsInFlight = () => [.. worker.All.Select((w, i) => (worker.Labels[i], w.Host.NumInFlight))];
        health.Ready(options.ServedName);
        logger.LogInformation("worker ready: model {Model} ({ModelPath}) on {Engines}, {NumSlots} KV slots each, up to {MaxShards} shards held each",
            options.ServedName, options.ModelLocation, string.Join(", ", worker.Labels), models[0].Engine.NumSlots, options.MaxConcurrentShards);

        using var drain = new CancellationTokenSource();
        using var onStop = stoppingToken.Register(() =>
        {
            health.Draining();
            logger.LogInformation("stopping: no new shards; {NumRequests} requests in flight get {DrainSeconds} s to finish",
                worker.NumInFlight, options.DrainSeconds);
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

    /// <summary>
    /// The package from <see cref="WorkerOptions.ModelSourceUri"/> read into host memory once and opened from there, or the
    /// folder <see cref="WorkerOptions.ModelPath"/>, on each engine; each stage's time and rate logged (docs/performance.md, cold start).
    /// </summary>
    private async Task<IReadOnlyList<LoadedModel>> LoadModelAsync(CancellationToken cancellationToken)
    {
        var each = engines.Each(GpuChoice.NumVisible); // a GPU not present fails the worker here, before the package is read
        PackageFiles files;
        if (options.ModelSourceUri is { } uri)
        {
            var storage = modelStorage
                ?? throw new InvalidOperationException($"Model:SourceUri {uri} needs the Azure transport (the storage account it is in); locally set Model:Path");
            var source = BlobModelSource.From(storage, uri);
            logger.LogInformation("reading model package {Source} into memory", uri);
            (files, var read) = await new BlobPackageReader(source.Store, source.Prefix, uri.ToString(), options.ModelRead).ReadAsync(cancellationToken: cancellationToken);
            logger.LogInformation("model package {Source}: {NumFiles} files, {MiB} MiB in {NumReads} ranged reads, {Seconds:F2} s ({MiBPerSecond:F0} MiB/s)",
                uri, read.NumFiles, read.NumBytes >> 20, read.NumReads, read.Elapsed.TotalSeconds, read.BytesPerSecond / (1 << 20));
        }
        else files = PackageFiles.InDirectory(options.ModelPath);
        logger.LogInformation("loading model {ModelPath} on {NumEngines} engine(s)", options.ModelLocation, each.Count);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var models = await Task.Run(() => LoadedModel.OpenEach(files, each), CancellationToken.None); // they own the files once it runs
        logger.LogInformation("model {ModelPath} loaded: {Seconds:F2} s", options.ModelLocation, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
        return models;
    }
}

using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Execution;
using VicunaBatch.Inference;
using VicunaBatch.Local;

namespace VicunaBatch.Cli;

/// <summary>
/// What one drain did: the job it ended, the requests an earlier (interrupted) run had already checkpointed, and the
/// requests and output tokens this drain ran itself, in all and on each engine.
/// </summary>
internal sealed record DrainResult(BatchJob Job, long CheckpointedBefore, long Requests, long OutputTokens, IReadOnlyList<EngineShare> Engines);

/// <summary>The requests and output tokens one engine of a drain ran (<see cref="EngineWorkers.Labels"/>: <c>GPU 1</c>).</summary>
internal sealed record EngineShare(string Engine, long Requests, long OutputTokens);

/// <summary>
/// Runs a data folder's queue through the model's engines (one per GPU) until a job ends, as <c>serve</c> runs it: the
/// engine chains (<see cref="EngineWorkers"/>) take the shards and announce each settled one on the shard-done queue, the
/// <see cref="ShardDoneHandler"/> finalizes the job from those events, and the <see cref="JobSweeper"/> rechecks a job
/// an interrupted run left with every shard reported. <c>run</c> drives one job with it, <c>pipeline run</c> each stage.
/// <paramref name="modelName"/> is the name the data folder serves <paramref name="models"/> by: its queue's, its outputs'.
/// </summary>
internal sealed class LocalDrain(IServiceProvider services, IReadOnlyList<LoadedModel> models, string modelName, EngineWorkerOptions options)
{
    /// <param name="onProgress">Requests done, failed, in all, and output tokens, while the queue drains.</param>
    public async Task<DrainResult> RunAsync(string jobId, Action<long, long, long, long>? onProgress, CancellationToken cancellationToken = default)
    {
        var blobs = services.GetRequiredService<IBlobStore>();
        var plan = await ShardReports.ReadPlanAsync(blobs, jobId, cancellationToken);
        var before = await OutcomeDeduplication.DeduplicateAsync(
            services.GetRequiredService<ICheckpointStore>().ReadJobAsync(jobId, cancellationToken), cancellationToken);
        long doneBefore = before.Count(o => o.Succeeded), failedBefore = before.Count - doneBefore;

        await services.GetRequiredService<LocalWorkQueues>().MoveUnnamedShardsAsync(modelName, cancellationToken);
        await using var workers = new EngineWorkers(models, services.ShardPortsOf(modelName), options, services.GetRequiredService<TimeProvider>());
        void Report() => onProgress?.Invoke(doneBefore + workers.NumSucceeded, failedBefore + workers.NumFailed, plan.NumRequests, workers.NumOutputTokens);
        using var progressTimer = new Timer(_ => Report(), null, TimeSpan.Zero, TimeSpan.FromMilliseconds(250));

        var ended = new TaskCompletionSource<BatchJob>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var control = Task.WhenAll(
            services.GetRequiredService<ShardDoneHandler>().RunAsync(services.GetRequiredService<ControlQueues>().ShardDone,
                ending => { if (ending.Job.Id == jobId) ended.TrySetResult(ending.Job); }, stop.Token),
            services.GetRequiredService<JobSweeper>().RunAsync(SweepInterval, stop.Token));
        var working = workers.RunAsync(_ => Task.FromResult(false), cancellationToken: stop.Token);
        BatchJob job;
        try
        {
            var first = await Task.WhenAny(ended.Task, working, control);
            if (first != ended.Task)
            {
                await first; // the worker or the control plane failed: the drain fails with it
                throw new InvalidOperationException($"job {jobId}: the drain stopped before the job ended (state in {blobs})");
            }
            job = await ended.Task;
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(working, control).ContinueWith(_ => { }, TaskScheduler.Default); // both end on the cancellation
        }
        Report();
        var engines = workers.All.Select((w, i) => new EngineShare(workers.Labels[i], w.Executor.NumSucceeded + w.Executor.NumFailed, w.Executor.NumOutputTokens)).ToList();
        return new DrainResult(job, before.Count, workers.NumSucceeded + workers.NumFailed, workers.NumOutputTokens, engines);
    }

    /// <summary>The sweeper's interval within a drain: a job stranded by a lost event is found this late at most.</summary>
    private static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Pipeline stages on this machine: each submitted job is drained through the one loaded model; with
/// <paramref name="showProgress"/>, a line naming the stage on stderr and its progress as <c>run</c> shows a job's.
/// </summary>
internal sealed class LocalJobDriver(LocalDrain drain, bool showProgress = false) : IJobDriver
{
    public async Task<BatchJob> RunToEndAsync(BatchJob job, CancellationToken cancellationToken = default)
    {
        if (!showProgress) return (await drain.RunAsync(job.Id, onProgress: null, cancellationToken)).Job;
        Console.Error.WriteLine($"stage {job.Id}: {job.RequestCounts.Total} request{(job.RequestCounts.Total == 1 ? "" : "s")}");
        ProgressLine? bar = null;
        try
        {
            return (await drain.RunAsync(job.Id, (done, failed, total, tokens) =>
            {
                bar ??= new ProgressLine(total);
                bar.Report(done + failed, tokens, failed);
            }, cancellationToken)).Job;
        }
        finally
        {
            bar?.Clear();
        }
    }
}

using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference;
using VicunaBatch.Local;
using VicunaBatch.Worker;

namespace VicunaBatch.Cli;

/// <summary>
/// The one-machine parts of a job under a state folder — folder blob and checkpoint stores, the SQLite queue, the job
/// store, submitter and finalizer — and the drain that takes a queued job to its end through one engine
/// (ShardPump → ShardProcessor → EngineRequestExecutor). <c>run</c> drives one job with it, <c>pipeline run</c> a chain.
/// The caller owns the queue (one process per state folder: see <see cref="LockStateFolder"/>).
/// </summary>
internal sealed class LocalJobParts
{
    public LocalJobParts(string stateDir, InputOptions inputOptions, TimeProvider time)
    {
        Directory.CreateDirectory(stateDir);
        StateDirectory = stateDir;
        Time = time;
        InputOptions = inputOptions;
        Blobs = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = Path.Combine(stateDir, "blobs") });
        Checkpoints = new FolderCheckpointStore(new FolderCheckpointStoreOptions { RootPath = Path.Combine(stateDir, "checkpoints") });
        Queue = new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = Path.Combine(stateDir, "queue.db") }, time);
        Jobs = new BlobJobStore(Blobs);
        Submitter = new JobSubmitter(Blobs, Jobs, Queue, inputOptions, time);
        Finalizer = new JobFinalizer(Blobs, Jobs, Checkpoints, inputOptions, time);
    }

    public string StateDirectory { get; }
    public TimeProvider Time { get; }
    public InputOptions InputOptions { get; }
    public FolderBlobStore Blobs { get; }
    public FolderCheckpointStore Checkpoints { get; }
    public SqliteWorkQueue Queue { get; }
    public BlobJobStore Jobs { get; }
    public JobSubmitter Submitter { get; }
    public JobFinalizer Finalizer { get; }

    /// <summary>Holds <c>run.lock</c> in the state folder for the caller's lifetime, or says who holds it.</summary>
    public static FileStream LockStateFolder(string stateDir, string what)
    {
        Directory.CreateDirectory(stateDir);
        try
        {
            return new FileStream(Path.Combine(stateDir, "run.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new UsageException($"{what} is already being run by another process (lock: {Path.Combine(stateDir, "run.lock")})");
        }
    }

    /// <summary>Runs the queue through <paramref name="model"/> until the finalizer ends <paramref name="jobId"/>.</summary>
    public async Task<DrainResult> DrainAsync(
        string jobId, LoadedModel model, RequestDefaults defaults, int workers, Action<long, long, long, long>? onProgress,
        CancellationToken cancellationToken = default)
    {
        var plan = await ShardReports.ReadPlanAsync(Blobs, jobId, cancellationToken);
        var before = await OutcomeDeduplication.DeduplicateAsync(Checkpoints.ReadJobAsync(jobId, cancellationToken), cancellationToken);
        long doneBefore = before.Count(o => o.Succeeded), failedBefore = before.Count - doneBefore;

        await using var host = new EngineHost(model.Engine, ownsEngine: false);
        var executor = new EngineRequestExecutor(host, model, defaults, Time);
        var processor = new ShardProcessor(Blobs, Checkpoints, Queue, executor, InputOptions, new ShardProcessorOptions(), Time);
        var pump = EnginePrefetch.LocalPump(host, model.Engine.NumSlots, Queue, processor, minShards: workers);

        using var progressTimer = new Timer(_ => onProgress?.Invoke(
            doneBefore + executor.NumSucceeded, failedBefore + executor.NumFailed, plan.NumRequests, executor.NumOutputTokens),
            null, TimeSpan.Zero, TimeSpan.FromMilliseconds(250));

        BatchJob? finished = null;
        await pump.RunAsync(
            onShardSettled: (_, _) => Task.CompletedTask,
            isDone: async ct =>
            {
                var result = await Finalizer.TryFinalizeAsync(jobId, ct);
                if (result.Status != FinalizeStatus.NotReady)
                {
                    finished = result.Job;
                    return true;
                }
                if (await Queue.CountAsync(ct) == 0)
                {
                    throw new InvalidOperationException(
                        $"job {jobId} cannot finish: no shard is queued but not every shard reported (state in {Blobs})");
                }
                return false;
            },
            cancellationToken);
        onProgress?.Invoke(doneBefore + executor.NumSucceeded, failedBefore + executor.NumFailed, plan.NumRequests, executor.NumOutputTokens);
        return new DrainResult(finished!, before.Count, executor.NumSucceeded + executor.NumFailed, executor.NumOutputTokens);
    }
}

/// <summary>
/// What one drain did: the job it ended, the requests an earlier (interrupted) run had already checkpointed, and the
/// requests and output tokens this drain ran itself.
/// </summary>
internal sealed record DrainResult(BatchJob Job, long CheckpointedBefore, long Requests, long OutputTokens);

/// <summary>
/// Pipeline stages on this machine: each submitted job is drained through the one loaded model; with
/// <paramref name="showProgress"/>, a line naming the stage on stderr and its progress as <c>run</c> shows a job's.
/// </summary>
internal sealed class LocalJobDriver(LocalJobParts parts, LoadedModel model, RequestDefaults defaults, int workers, bool showProgress = false) : IJobDriver
{
    public async Task<BatchJob> RunToEndAsync(BatchJob job, CancellationToken cancellationToken = default)
    {
        if (!showProgress) return (await parts.DrainAsync(job.Id, model, defaults, workers, onProgress: null, cancellationToken)).Job;
        Console.Error.WriteLine($"stage {job.Id}: {job.RequestCounts.Total} request{(job.RequestCounts.Total == 1 ? "" : "s")}");
        ProgressLine? bar = null;
        try
        {
            return (await parts.DrainAsync(job.Id, model, defaults, workers, (done, failed, total, tokens) =>
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

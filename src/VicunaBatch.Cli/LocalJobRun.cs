using System.Security.Cryptography;
using System.Text;
using VicunaBatch.Core;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Local;
using VicunaBatch.Worker;

namespace VicunaBatch.Cli;

/// <summary>What <c>vicuna-batch run</c> was asked to do.</summary>
internal sealed record LocalRunSettings(
    string InputPath,
    string ModelPath,
    string? OutputDirectory,
    RequestDefaults Defaults,
    EngineOptions Engine,
    int Workers,
    int RequestsPerShard);

/// <summary>What a finished run left in its output folder.</summary>
internal sealed record LocalRunSummary(BatchJob Job, string OutputDirectory);

/// <summary>
/// One bulk file on one machine: the same Core submitter, shard processor and finalizer as on Azure, over the
/// SQLite queue and folder stores in <c>OUT/.state/</c>. The job id is a hash of the input and the settings that
/// change results, so running the same command again resumes the same job: checkpointed requests are skipped.
/// </summary>
internal sealed class LocalJobRun(LocalRunSettings settings, TimeProvider time)
{
    public static string JobIdFor(LocalRunSettings settings)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var input = File.OpenRead(settings.InputPath))
        {
            var buffer = new byte[1 << 16];
            int read;
            while ((read = input.Read(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
            }
        }
        var d = settings.Defaults;
        hash.AppendData(Encoding.UTF8.GetBytes(FormattableString.Invariant(
            $"\n{Path.GetFullPath(settings.ModelPath)}\n{d.MaxTokens}\n{d.Temperature}\n{d.TopP}\n{settings.RequestsPerShard}")));
        return "batch_" + Convert.ToHexStringLower(hash.GetHashAndReset())[..24];
    }

    public async Task<LocalRunSummary> RunAsync(Action<long, long, long, long>? onProgress = null, CancellationToken cancellationToken = default)
    {
        // a bad model path fails before any job state is written; the session loads while the input is validated
        Inference.Package.ModelPackage.Load(settings.ModelPath);
        var loading = Task.Run(() => LoadedModel.Open(settings.ModelPath, settings.Engine), cancellationToken);
        try
        {
            return await RunAsync(loading, onProgress, cancellationToken);
        }
        finally
        {
            await loading.ContinueWith(t => t.Result.Dispose(), TaskContinuationOptions.OnlyOnRanToCompletion);
        }
    }

    private async Task<LocalRunSummary> RunAsync(
        Task<LoadedModel> loading, Action<long, long, long, long>? onProgress, CancellationToken cancellationToken)
    {
        var jobId = JobIdFor(settings);
        var outDir = Path.GetFullPath(settings.OutputDirectory ?? Path.Combine("results", jobId));
        var stateDir = Path.Combine(outDir, ".state");
        Directory.CreateDirectory(stateDir);
        using var runLock = AcquireRunLock(stateDir, jobId);

        var blobs = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = Path.Combine(stateDir, "blobs") });
        var checkpoints = new FolderCheckpointStore(new FolderCheckpointStoreOptions { RootPath = Path.Combine(stateDir, "checkpoints") });
        var queue = new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = Path.Combine(stateDir, "queue.db") }, time);
        var jobs = new BlobJobStore(blobs);
        var inputOptions = new InputOptions { RequestsPerShard = settings.RequestsPerShard };

        var inputBlob = $"inputs/{jobId}{(InputOptions.FormatFromName(settings.InputPath) == InputFormat.Text ? ".txt" : ".jsonl")}";
        if (!await blobs.ExistsAsync(inputBlob, cancellationToken))
        {
            await using var input = File.OpenRead(settings.InputPath);
            await blobs.PutAsync(inputBlob, input, BlobCondition.IfNotExists, cancellationToken);
        }
        var job = await new JobSubmitter(blobs, jobs, queue, inputOptions, time)
            .SubmitAsync(new JobSubmission(inputBlob) { JobId = jobId }, cancellationToken);
        var finalizer = new JobFinalizer(blobs, jobs, checkpoints, inputOptions, time);
        if (!JobStateMachine.IsTerminal(job.Status))
        {
            // this process owns the queue (run lock): locks held by a run that was killed are released now
            await queue.ReleaseAllLocksAsync(cancellationToken);
            job = await DrainAsync(jobId, await loading, blobs, checkpoints, queue, inputOptions, finalizer, onProgress, cancellationToken);
        }
        await CopyResultsAsync(blobs, jobId, outDir, cancellationToken);
        return new LocalRunSummary(job, outDir);
    }

    private async Task<BatchJob> DrainAsync(
        string jobId, LoadedModel model, FolderBlobStore blobs, FolderCheckpointStore checkpoints, SqliteWorkQueue queue, InputOptions inputOptions,
        JobFinalizer finalizer, Action<long, long, long, long>? onProgress, CancellationToken cancellationToken)
    {
        var plan = await ShardReports.ReadPlanAsync(blobs, jobId, cancellationToken);
        var before = await OutcomeDeduplication.DeduplicateAsync(checkpoints.ReadJobAsync(jobId, cancellationToken), cancellationToken);
        long doneBefore = before.Count(o => o.Succeeded), failedBefore = before.Count - doneBefore;
        long tokensBefore = before.Sum(o => (long)o.CompletionTokens);

        await using var host = new EngineHost(model.Engine, ownsEngine: false);
        var executor = new EngineRequestExecutor(host, model, settings.Defaults, time);
        var processor = new ShardProcessor(blobs, checkpoints, queue, executor, inputOptions, new ShardProcessorOptions(), time);
        var pump = new ShardPump(queue, processor, new ShardPumpOptions { MaxConcurrentShards = settings.Workers });

        using var progressTimer = new Timer(_ => onProgress?.Invoke(
            doneBefore + executor.NumSucceeded, failedBefore + executor.NumFailed, plan.NumRequests, executor.NumOutputTokens),
            null, TimeSpan.Zero, TimeSpan.FromMilliseconds(250));

        BatchJob? finished = null;
        await pump.RunAsync(
            onShardSettled: (_, _) => Task.CompletedTask,
            isDone: async ct =>
            {
                var result = await finalizer.TryFinalizeAsync(jobId, ct);
                if (result.Status != FinalizeStatus.NotReady)
                {
                    finished = result.Job;
                    return true;
                }
                if (await queue.CountAsync(ct) == 0)
                {
                    throw new InvalidOperationException(
                        $"job {jobId} cannot finish: no shard is queued but not every shard reported (state in {blobs})");
                }
                return false;
            },
            cancellationToken);
        onProgress?.Invoke(doneBefore + executor.NumSucceeded, failedBefore + executor.NumFailed, plan.NumRequests, executor.NumOutputTokens);
        return finished!;
    }

    private static async Task CopyResultsAsync(FolderBlobStore blobs, string jobId, string outDir, CancellationToken cancellationToken)
    {
        foreach (var (blob, file) in new[]
        {
            (JobIds.OutputBlob(jobId), "output.jsonl"),
            (JobIds.ErrorsBlob(jobId), "errors.jsonl"),
            (JobIds.JobBlob(jobId), "job.json"),
        })
        {
            var target = Path.Combine(outDir, file);
            if (await blobs.ExistsAsync(blob, cancellationToken))
            {
                await File.WriteAllBytesAsync(target, await blobs.ReadBytesAsync(blob, cancellationToken), cancellationToken);
            }
            else if (file != "job.json")
            {
                await File.WriteAllBytesAsync(target, [], cancellationToken);
            }
        }
    }

    private static FileStream AcquireRunLock(string stateDir, string jobId)
    {
        try
        {
            return new FileStream(Path.Combine(stateDir, "run.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new UsageException($"job {jobId} is already being run by another process (lock: {Path.Combine(stateDir, "run.lock")})");
        }
    }
}

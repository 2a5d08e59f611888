using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Execution;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Local;

namespace VicunaBatch.Cli;

/// <summary>What <c>vicuna-batch run</c> was asked to do.</summary>
internal sealed record LocalRunSettings(
    string InputPath,
    ModelChoice Model,
    string? OutputDirectory,
    RequestDefaults Defaults,
    EngineOptions Engine,
    int Workers,
    InputOptions Input)
{
    /// <summary>
    /// The options of each engine the model runs on, fed from the one queue (one per GPU: <see cref="ModelOptions.EachEngine"/>).
    /// Default: one engine, <see cref="Engine"/>.
    /// </summary>
    public IReadOnlyList<EngineOptions> Engines { get; init; } = [Engine];

    /// <summary>Every setting in range, checked before the run prints its job or writes any of its state.</summary>
    public void Validate()
    {
        Defaults.Validate();
        Engine.Validate();
        foreach (var engine in Engines) engine.Validate();
        new ShardPumpOptions { MaxConcurrentShards = Workers }.Validate();
        Input.Validate();
    }
}

/// <summary>Where a run is: what the command says while no progress bar can.</summary>
internal enum RunStage
{
    /// <summary>The input is validated, sharded and queued; the model loads beside it.</summary>
    Submitting,

    /// <summary>The job is queued; the model is still loading.</summary>
    LoadingModel,

    /// <summary>The queue drains into the engine: the progress bar's part.</summary>
    Running,
}

/// <summary>
/// The job as it ended, where its files are, what this run drained (null: nothing to drain, the job ended at submit or
/// before), and whether it had ended before this run began.
/// </summary>
internal sealed record LocalRunSummary(BatchJob Job, string OutputDirectory, DrainResult? Drain, bool EndedBefore);

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
            $"\n{settings.Model.Path}\n{d.MaxTokens}\n{d.Temperature}\n{d.TopP}\n{settings.Input.RequestsPerShard}")));
        // only a name other than the package's joins the id (it names the outputs' model), so earlier runs keep theirs
        if (settings.Model.Name != ModelChoice.Of(settings.Model.Path).Name)
            hash.AppendData(Encoding.UTF8.GetBytes($"\nmodel {settings.Model.Name}"));
        // only a limit other than the default joins the id, so runs made before the setting existed keep theirs
        if (settings.Input.MaxLineBytes != InputOptions.DefaultMaxLineBytes)
            hash.AppendData(Encoding.UTF8.GetBytes(FormattableString.Invariant($"\nmax-line-bytes {settings.Input.MaxLineBytes}")));
        return "batch_" + Convert.ToHexStringLower(hash.GetHashAndReset())[..24];
    }

    /// <summary>Where the run's files go: <c>--out</c>, or <c>./results/JOB_ID/</c>.</summary>
    public static string OutputDirectoryFor(LocalRunSettings settings, string jobId) =>
        Path.GetFullPath(settings.OutputDirectory ?? Path.Combine("results", jobId));

    /// <summary>
    /// The id of the job whose results the output folder holds now when that is another job (an <c>--out</c> used
    /// before for another file or other settings), else null: this run replaces those files.
    /// </summary>
    public static string? OtherJobInOutput(LocalRunSettings settings, string jobId)
    {
        var path = Path.Combine(OutputDirectoryFor(settings, jobId), "job.json");
        try
        {
            using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(path));
            return json.RootElement.TryGetProperty("id", out var id) && id.GetString() is { } other && other != jobId ? other : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            return null; // none there (or not one of ours): nothing to say
        }
    }

    /// <param name="onProgress">Requests done, failed, in all, and output tokens, while the queue drains.</param>
    /// <param name="onStage">Each stage as the run enters it.</param>
    /// <param name="onModelLoaded">The model, once loaded on every engine (on the loading thread).</param>
    public async Task<LocalRunSummary> RunAsync(
        Action<long, long, long, long>? onProgress = null, Action<RunStage>? onStage = null, Action<IReadOnlyList<LoadedModel>>? onModelLoaded = null,
        CancellationToken cancellationToken = default)
    {
        // the session loads while the input is validated; bad settings and a bad model path still fail before any
        // job state is written (the package is read here too, beside the load, not before it: the load is the longer way)
        settings.Validate();
        onStage?.Invoke(RunStage.Submitting);
        var loading = Task.Run(() =>
        {
            var models = LoadedModel.OpenEach(Inference.Package.PackageFiles.InDirectory(settings.Model.Path), settings.Engines);
            onModelLoaded?.Invoke(models);
            return models;
        }, cancellationToken);
        try
        {
            Inference.Package.ModelPackage.Load(settings.Model.Path);
            return await RunAsync(loading, onProgress, onStage, cancellationToken);
        }
        finally
        {
            // waits without throwing: a load that failed has already failed the run (or a bad package did, first)
            await Task.WhenAny(loading);
            if (loading.IsCompletedSuccessfully) foreach (var model in await loading) model.Dispose();
        }
    }

    private async Task<LocalRunSummary> RunAsync(
        Task<IReadOnlyList<LoadedModel>> loading, Action<long, long, long, long>? onProgress, Action<RunStage>? onStage, CancellationToken cancellationToken)
    {
        var jobId = JobIdFor(settings);
        var outDir = OutputDirectoryFor(settings, jobId);
        var state = new LocalDataFolder(Path.Combine(outDir, ".state"));
        using var runLock = TakeStateFolder(state, $"job {jobId}");
        await using var services = OneMachine.Build(state.Path, settings.Input, [settings.Model.Name], time);
        var blobs = services.GetRequiredService<IBlobStore>();
        var jobs = services.GetRequiredService<IJobStore>();
        await RefuseUnfinishedOtherJobAsync(blobs, jobs, jobId, outDir, cancellationToken);

        var inputBlob = $"inputs/{jobId}{(InputOptions.FormatFromName(settings.InputPath) == InputFormat.Text ? ".txt" : ".jsonl")}";
        if (!await blobs.ExistsAsync(inputBlob, cancellationToken))
        {
            await using var file = File.OpenRead(settings.InputPath);
            await blobs.PutAsync(inputBlob, file, BlobCondition.IfNotExists, cancellationToken);
        }
        var endedBefore = await jobs.GetAsync(jobId, cancellationToken) is { } stored && JobStateMachine.IsTerminal(stored.Job.Status);
        var job = await services.GetRequiredService<JobSubmitter>().SubmitAsync(new JobSubmission(inputBlob) { JobId = jobId }, cancellationToken);
        DrainResult? drain = null;
        if (!JobStateMachine.IsTerminal(job.Status))
        {
            if (!loading.IsCompleted) onStage?.Invoke(RunStage.LoadingModel);
            var models = await loading;
            onStage?.Invoke(RunStage.Running);
            drain = await new LocalDrain(services, models, settings.Model.Name, EngineWorkerOptions.OneMachine(settings.Workers, settings.Defaults, settings.Input))
                .RunAsync(jobId, onProgress, cancellationToken);
            job = drain.Job;
        }
        await CopyResultsAsync(blobs, jobId, outDir, cancellationToken);
        return new LocalRunSummary(job, outDir, drain, endedBefore);
    }

    /// <summary>Holds <c>run.lock</c> in the state folder for the caller's lifetime, or says who holds it.</summary>
    public static FileStream TakeStateFolder(LocalDataFolder state, string what) => state.TryTakeExclusive("run")
        ?? throw new UsageException($"{what} is already being run by another process (lock: {state.LockPath("run")})");

    /// <summary>
    /// Another job of this state folder that has not ended: its shards share the queue, so this drain would run them
    /// too and count them in this job's progress, and the folder's files could be only one job's. Refused, before this
    /// job writes anything; a job that ended is only history (its results are replaced by this one's).
    /// </summary>
    private static async Task RefuseUnfinishedOtherJobAsync(IBlobStore blobs, IJobStore jobs, string jobId, string outDir, CancellationToken cancellationToken)
    {
        await foreach (var (otherId, _, _) in JobListing.ListAsync(blobs, cancellationToken))
        {
            if (otherId != jobId && await jobs.GetAsync(otherId, cancellationToken) is { } other && !JobStateMachine.IsTerminal(other.Job.Status))
            {
                throw new UsageException(
                    $"{outDir} holds job {otherId}, which has not ended: run its command again to finish it, or give this one another --out");
            }
        }
    }

    private static async Task CopyResultsAsync(IBlobStore blobs, string jobId, string outDir, CancellationToken cancellationToken)
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
                // streamed: a job's output can be far larger than the memory the run needs for itself
                await using var source = await blobs.OpenReadAsync(blob, null, cancellationToken);
                await using var copy = new FileStream(target, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                await source.CopyToAsync(copy, cancellationToken);
            }
            else if (file != "job.json")
            {
                await File.WriteAllBytesAsync(target, [], cancellationToken);
            }
        }
    }
}

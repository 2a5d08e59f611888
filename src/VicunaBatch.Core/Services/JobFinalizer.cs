using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Diagnostics;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Core.Services;

public enum FinalizeStatus
{
    /// <summary>Some shards are not settled yet; <see cref="FinalizeResult.Job"/> carries fresh progress.</summary>
    NotReady,
    /// <summary>This call wrote the files and completed the job.</summary>
    Finalized,
    /// <summary>The job was already in a terminal status (or not yet in progress); nothing written.</summary>
    Skipped,
}

public sealed record FinalizeResult(FinalizeStatus Status, BatchJob Job);

/// <summary>
/// When every shard has a report: merges checkpoints, validation errors and the unfinished requests
/// of dead-lettered shards (<c>shard_failed</c>) into <c>output.jsonl</c> / <c>errors.jsonl</c>, one
/// line per custom_id in input line order, sets request_counts and usage, and completes the job.
/// Works shard by shard, so memory is bounded by one shard. Safe to call repeatedly and concurrently;
/// a job left in <c>finalizing</c> is finalized again with byte-identical files.
/// <see cref="TryExpireAsync"/> ends a job that ran past <c>expires_at</c> with the results it has.
/// </summary>
public sealed class JobFinalizer(IBlobStore blobs, IJobStore jobs, ICheckpointStore checkpoints, InputOptions options, TimeProvider time)
{
    private readonly LineParser _parser = new(options);
    private readonly ShardReports _reports = new(blobs);

    public async Task<FinalizeResult> TryFinalizeAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var stored = await GetAsync(jobId, cancellationToken);
        var job = stored.Job;
        if (job.Status is not (JobStatus.InProgress or JobStatus.Finalizing)) return new FinalizeResult(FinalizeStatus.Skipped, job);

        var progress = await _reports.GetProgressAsync(jobId, cancellationToken);
        job.Progress = progress;
        if (progress.ShardsDone < progress.ShardsTotal) return new FinalizeResult(FinalizeStatus.NotReady, job);

        string etag = stored.ETag;
        if (job.Status == JobStatus.InProgress)
        {
            JobStateMachine.Transition(job, JobStatus.Finalizing, time.GetUtcNow());
            if (await TrySaveAsync(job, etag, cancellationToken) is not { } saved) return await TryFinalizeAsync(jobId, cancellationToken);
            etag = saved;
        }

        Totals totals;
        try { totals = await WriteFilesAsync(job.Id, ReportedShardsAsync(jobId, cancellationToken), cancellationToken); }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.Denied) { return await FailAsync(job, etag, e, cancellationToken); }
        CrashPoints.Hit(CrashPoints.JobAfterFiles, jobId);
        SetResults(job, totals, progress);
        JobStateMachine.Transition(job, JobStatus.Completed, time.GetUtcNow());
        if (await TrySaveAsync(job, etag, cancellationToken) is null)
            return new FinalizeResult(FinalizeStatus.Skipped, (await jobs.GetAsync(jobId, cancellationToken))!.Job);
        return new FinalizeResult(FinalizeStatus.Finalized, job);
    }

    /// <summary>
    /// A job still running at <c>expires_at</c> becomes <c>expired</c>: what its shards checkpointed goes to
    /// <c>output.jsonl</c> / <c>errors.jsonl</c> as at finalization, and every request that has no result yet
    /// becomes a <c>batch_expired</c> error line (counted as failed). A job whose shards have all reported is
    /// finalized (completed) instead: its work is done, only the finalizer has not run yet.
    /// <see cref="FinalizeStatus.NotReady"/>: not due yet; <see cref="FinalizeStatus.Finalized"/>: this call ended
    /// the job (<see cref="BatchJob.Status"/> says how); <see cref="FinalizeStatus.Skipped"/>: already ended, or
    /// <c>cancelling</c> (a cancellation ends as <c>cancelled</c>). The status is saved before the files are
    /// written, so a worker's late report cannot complete it meanwhile; a call after a crash between the two
    /// writes the files again (byte-identical for the same checkpoints).
    /// </summary>
    public async Task<FinalizeResult> TryExpireAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var stored = await GetAsync(jobId, cancellationToken);
        var job = stored.Job;
        bool hasPlan = await blobs.ExistsAsync(JobIds.PlanBlob(jobId), cancellationToken);
        if (job is { Status: JobStatus.Expired, OutputFileId: null } && hasPlan) return await WriteExpiredFilesAsync(job, stored.ETag, cancellationToken);
        if (!JobStateMachine.CanTransition(job.Status, JobStatus.Expired)) return new FinalizeResult(FinalizeStatus.Skipped, job);
        if (job.ExpiresAt is not { } expiresAt || time.GetUtcNow().ToUnixTimeSeconds() < expiresAt) return new FinalizeResult(FinalizeStatus.NotReady, job);
        if (job.Status != JobStatus.Validating && hasPlan
            && await _reports.GetProgressAsync(jobId, cancellationToken) is var progress && progress.ShardsDone >= progress.ShardsTotal)
            return await TryFinalizeAsync(jobId, cancellationToken);

        JobStateMachine.Transition(job, JobStatus.Expired, time.GetUtcNow());
        if (await TrySaveAsync(job, stored.ETag, cancellationToken) is not { } etag) return await TryExpireAsync(jobId, cancellationToken);
        return hasPlan ? await WriteExpiredFilesAsync(job, etag, cancellationToken) : new FinalizeResult(FinalizeStatus.Finalized, job);
    }

    /// <summary>
    /// A <c>cancelling</c> job whose shards have all reported (a worker skips the shards of a cancelling job) becomes
    /// <c>cancelled</c> with the results it has, as at expiry: what ran goes to <c>output.jsonl</c> /
    /// <c>errors.jsonl</c>, and each request that never ran becomes a <c>batch_cancelled</c> error line (counted as
    /// failed). A job cancelled before its plan was written has no files. The files are written first and the job is
    /// saved once, cancelled with their ids, so no one sees it cancelled without them; a call after a crash between
    /// the two writes the same files again. <see cref="FinalizeStatus.NotReady"/>: shards still to report;
    /// <see cref="FinalizeStatus.Skipped"/>: not cancelling.
    /// </summary>
    public async Task<FinalizeResult> TryCancelAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var stored = await GetAsync(jobId, cancellationToken);
        var job = stored.Job;
        if (job.Status != JobStatus.Cancelling) return new FinalizeResult(FinalizeStatus.Skipped, job);
        if (await blobs.ExistsAsync(JobIds.PlanBlob(jobId), cancellationToken))
        {
            var progress = await _reports.GetProgressAsync(jobId, cancellationToken);
            job.Progress = progress;
            if (progress.ShardsDone < progress.ShardsTotal) return new FinalizeResult(FinalizeStatus.NotReady, job);
            SetResults(job, await WriteFilesAsync(job.Id, ReportedShardsAsync(jobId, cancellationToken), NotRun.Cancelled, cancellationToken), progress);
        }
        JobStateMachine.Transition(job, JobStatus.Cancelled, time.GetUtcNow());
        if (await TrySaveAsync(job, stored.ETag, cancellationToken) is null) return await TryCancelAsync(jobId, cancellationToken);
        return new FinalizeResult(FinalizeStatus.Finalized, job);
    }

    /// <summary>
    /// The store refuses the result files (<see cref="BlobStoreFailure.Denied"/>; a transient failure is thrown and
    /// retried by the caller's trigger instead): the job ends <c>failed</c> with the store's reason in <c>errors</c>,
    /// and no output or error file is presented — a part already written is deleted. The checkpoints stay, so once
    /// the store is mended the results are still there to recover.
    /// </summary>
    private async Task<FinalizeResult> FailAsync(BatchJob job, string etag, BlobStoreException e, CancellationToken cancellationToken)
    {
        foreach (var blob in new[] { JobIds.OutputBlob(job.Id), JobIds.ErrorsBlob(job.Id) })
        {
            try { await blobs.DeleteAsync(blob, cancellationToken); }
            catch (BlobStoreException) { } // refused too: the job below names no file, so nothing points at it
        }
        job.OutputFileId = null;
        job.ErrorFileId = null;
        job.Errors = new JobErrors([new JobError(ResultsNotWrittenCode, $"the results could not be written: {e.Message}", null, null)]);
        JobStateMachine.Transition(job, JobStatus.Failed, time.GetUtcNow());
        if (await TrySaveAsync(job, etag, cancellationToken) is null)
            return new FinalizeResult(FinalizeStatus.Skipped, (await jobs.GetAsync(job.Id, cancellationToken))!.Job);
        return new FinalizeResult(FinalizeStatus.Finalized, job);
    }

    /// <summary><c>errors.data[].code</c> of a job whose result files the store refused.</summary>
    public const string ResultsNotWrittenCode = "results_not_written";

    private async Task<FinalizeResult> WriteExpiredFilesAsync(BatchJob job, string etag, CancellationToken cancellationToken)
    {
        var totals = await WriteFilesAsync(job.Id, PlannedShardsAsync(job.Id, cancellationToken), cancellationToken);
        var progress = await _reports.GetProgressAsync(job.Id, cancellationToken);
        SetResults(job, totals, progress);
        if (await TrySaveAsync(job, etag, cancellationToken) is null)
            return new FinalizeResult(FinalizeStatus.Skipped, (await jobs.GetAsync(job.Id, cancellationToken))!.Job);
        return new FinalizeResult(FinalizeStatus.Finalized, job);
    }

    private async Task<StoredJob> GetAsync(string jobId, CancellationToken cancellationToken) =>
        await jobs.GetAsync(jobId, cancellationToken) ?? throw new ArgumentException($"job {jobId} does not exist", nameof(jobId));

    private static void SetResults(BatchJob job, Totals totals, JobProgress progress)
    {
        job.OutputFileId = JobIds.OutputBlob(job.Id);
        job.ErrorFileId = JobIds.ErrorsBlob(job.Id);
        job.RequestCounts = new RequestCounts(totals.Completed + totals.Failed, totals.Completed, totals.Failed);
        job.Usage = new BatchUsage(totals.InputTokens, totals.OutputTokens, totals.InputTokens + totals.OutputTokens);
        job.Progress = progress with { Completed = totals.Completed, Failed = totals.Failed };
    }

    /// <summary>Every shard with its report, in shard order (finalization: all have one).</summary>
    private async IAsyncEnumerable<(Shard Shard, ShardReport? Report)> ReportedShardsAsync(
        string jobId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var report in _reports.ReadAllAsync(jobId, cancellationToken)) yield return (report.Shard, report);
    }

    /// <summary>Every shard of the plan, as it was cut at submit, with its report where it has one (expiry).</summary>
    private async IAsyncEnumerable<(Shard Shard, ShardReport? Report)> PlannedShardsAsync(
        string jobId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var reports = new Dictionary<int, ShardReport>();
        await foreach (var report in _reports.ReadAllAsync(jobId, cancellationToken)) reports[report.Shard.ShardIndex] = report;
        var blob = JobIds.PlanShardsBlob(jobId);
        if (!await blobs.ExistsAsync(blob, cancellationToken))
            throw new InvalidOperationException($"job {jobId} has no recorded shards ({blob}): it was planned by a version that did not record them");
        await using var stream = await blobs.OpenReadAsync(blob, null, cancellationToken);
        await foreach (var line in PhysicalLineReader.ReadAsync(stream, 0, 1, cancellationToken: cancellationToken))
        {
            if (line.IsBlank) continue;
            var shard = Shard.FromJson(System.Text.Encoding.UTF8.GetString(line.Content));
            yield return (shard, reports.GetValueOrDefault(shard.ShardIndex));
        }
    }

    private async Task<string?> TrySaveAsync(BatchJob job, string etag, CancellationToken cancellationToken)
    {
        try { return await jobs.SaveAsync(job, etag, cancellationToken); }
        catch (JobStoreException e) when (e.Reason == JobStoreFailure.Conflict) { return null; }
    }

    private sealed record Totals(int Completed, int Failed, long InputTokens, long OutputTokens);

    private async Task<Totals> WriteFilesAsync(string jobId, IAsyncEnumerable<(Shard Shard, ShardReport? Report)> shards, CancellationToken cancellationToken) =>
        await WriteFilesAsync(jobId, shards, NotRun.Expired, cancellationToken);

    /// <summary>What a request that never ran becomes (its shard has no report, or a skipped one): the job's end.</summary>
    private sealed record NotRun(RequestErrorCode Code, string Message)
    {
        public static readonly NotRun Expired = new(RequestErrorCode.BatchExpired, "This request could not be executed before the completion window expired.");
        public static readonly NotRun Cancelled = new(RequestErrorCode.BatchCancelled, "This request was not executed because the batch was cancelled.");
    }

    private async Task<Totals> WriteFilesAsync(
        string jobId, IAsyncEnumerable<(Shard Shard, ShardReport? Report)> shards, NotRun notRun, CancellationToken cancellationToken)
    {
        await using var output = new JsonlSpool();
        await using var errors = new JsonlSpool();
        long input = 0, outputTokens = 0;
        await using var validationErrors = ReadValidationErrorsAsync(jobId, cancellationToken).GetAsyncEnumerator(cancellationToken);
        bool hasValidationError = await validationErrors.MoveNextAsync();

        await foreach (var (shard, report) in shards)
        {
            var items = await ShardItemsAsync(shard, report, notRun, cancellationToken);
            while (hasValidationError && validationErrors.Current.Line <= shard.LastLine)
            {
                items.Add((validationErrors.Current.Line, null, validationErrors.Current));
                hasValidationError = await validationErrors.MoveNextAsync();
            }
            foreach (var (_, outcome, error) in items.OrderBy(i => i.Line))
            {
                if (error is not null) { await errors.WriteLineAsync(OutputLines.FormatError(jobId, error)); continue; }
                await output.WriteLineAsync(OutputLines.FormatOutput(jobId, outcome!));
                input += outcome!.PromptTokens;
                outputTokens += outcome.CompletionTokens;
            }
        }
        for (; hasValidationError; hasValidationError = await validationErrors.MoveNextAsync())
            await errors.WriteLineAsync(OutputLines.FormatError(jobId, validationErrors.Current));

        await output.UploadAsync(blobs, JobIds.OutputBlob(jobId), cancellationToken);
        await errors.UploadAsync(blobs, JobIds.ErrorsBlob(jobId), cancellationToken);
        return new Totals(output.NumLines, errors.NumLines, input, outputTokens);
    }

    /// <summary>A shard's deduplicated outcomes as output or error items, plus error items for the requests it
    /// never finished: <c>shard_failed</c> for a dead-lettered shard (or, defensively, a completed shard whose
    /// checkpoints lack a request), <c>batch_expired</c> / <c>batch_cancelled</c> for a shard with no report or a skipped
    /// one (expiry, cancellation), so every valid line
    /// ends up in exactly one file.</summary>
    private async Task<List<(int Line, RequestOutcome? Outcome, ErrorLine? Error)>> ShardItemsAsync(
        Shard shard, ShardReport? report, NotRun notRun, CancellationToken cancellationToken)
    {
        var outcomes = await OutcomeDeduplication.DeduplicateAsync(
            checkpoints.ReadShardAsync(shard.JobId, shard.ShardIndex, cancellationToken), cancellationToken);
        var items = outcomes.Select(o => (o.LineNumber, o.Succeeded ? o : null, o.Succeeded ? null : ErrorLine.From(o))).ToList();
        bool completed = report?.State == ShardState.Completed;
        if (completed && outcomes.Count >= shard.NumRequests) return items;
        var (code, message) = report is null or { State: ShardState.Skipped }
            ? (notRun.Code, notRun.Message)
            : completed ? (RequestErrorCode.ShardFailed, $"shard {shard.ShardIndex} recorded no result for this request")
            : (RequestErrorCode.ShardFailed, $"shard {shard.ShardIndex} was dead-lettered: {report.Reason}");

        var done = outcomes.Select(o => o.CustomId).ToHashSet(StringComparer.Ordinal);
        await foreach (var parsed in shard.ReadAsync(blobs, _parser, cancellationToken))
        {
            // the endpoint shapes only a context-length error, which a request that did not run cannot have
            if (done.Add(parsed.CustomId))
                items.Add((parsed.LineNumber, null, ErrorLine.ForRequest(parsed.CustomId, parsed.LineNumber, parsed.Request?.Endpoint ?? default, code, message)));
        }
        return items;
    }

    private async IAsyncEnumerable<ErrorLine> ReadValidationErrorsAsync(string jobId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var stream = await blobs.OpenReadAsync(JobIds.ValidationErrorsBlob(jobId), null, cancellationToken);
        await foreach (var line in PhysicalLineReader.ReadAsync(stream, 0, 1, cancellationToken: cancellationToken))
            if (!line.IsBlank) yield return JsonSerializer.Deserialize<ErrorLine>(line.Content, ResultsJson.Options)!;
    }

    /// <summary>Lines spooled to a temp file (outputs may be larger than memory), then uploaded.</summary>
    private sealed class JsonlSpool : IAsyncDisposable
    {
        private readonly FileStream _file = new(Path.Combine(Path.GetTempPath(), $"vicuna-{Guid.NewGuid():N}.jsonl"),
            FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 64 * 1024, FileOptions.DeleteOnClose);

        public int NumLines { get; private set; }

        public async Task WriteLineAsync(string line)
        {
            await _file.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"));
            NumLines++;
        }

        public async Task UploadAsync(IBlobStore blobs, string name, CancellationToken cancellationToken)
        {
            await _file.FlushAsync(cancellationToken);
            _file.Position = 0;
            await blobs.PutAsync(name, _file, BlobCondition.None, cancellationToken);
        }

        public ValueTask DisposeAsync() => _file.DisposeAsync();
    }
}

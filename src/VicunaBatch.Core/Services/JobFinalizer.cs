using System.Text;
using System.Text.Json;

namespace VicunaBatch.Core;

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
/// </summary>
public sealed class JobFinalizer(IBlobStore blobs, IJobStore jobs, ICheckpointStore checkpoints, InputOptions options, TimeProvider time)
{
    private readonly LineParser _parser = new(options);
    private readonly ShardReports _reports = new(blobs);

    public async Task<FinalizeResult> TryFinalizeAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var stored = await jobs.GetAsync(jobId, cancellationToken)
            ?? throw new ArgumentException($"job {jobId} does not exist", nameof(jobId));
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

        var totals = await WriteFilesAsync(job.Id, cancellationToken);
        job.OutputFileId = JobIds.OutputBlob(job.Id);
        job.ErrorFileId = JobIds.ErrorsBlob(job.Id);
        job.RequestCounts = new RequestCounts(totals.Completed + totals.Failed, totals.Completed, totals.Failed);
        job.Usage = new BatchUsage(totals.InputTokens, totals.OutputTokens, totals.InputTokens + totals.OutputTokens);
        job.Progress = progress with { Completed = totals.Completed, Failed = totals.Failed };
        JobStateMachine.Transition(job, JobStatus.Completed, time.GetUtcNow());
        if (await TrySaveAsync(job, etag, cancellationToken) is null)
            return new FinalizeResult(FinalizeStatus.Skipped, (await jobs.GetAsync(jobId, cancellationToken))!.Job);
        return new FinalizeResult(FinalizeStatus.Finalized, job);
    }

    private async Task<string?> TrySaveAsync(BatchJob job, string etag, CancellationToken cancellationToken)
    {
        try { return await jobs.SaveAsync(job, etag, cancellationToken); }
        catch (JobStoreException e) when (e.Reason == JobStoreFailure.Conflict) { return null; }
    }

    private sealed record Totals(int Completed, int Failed, long InputTokens, long OutputTokens);

    private async Task<Totals> WriteFilesAsync(string jobId, CancellationToken cancellationToken)
    {
        await using var output = new JsonlSpool();
        await using var errors = new JsonlSpool();
        long input = 0, outputTokens = 0;
        await using var validationErrors = ReadValidationErrorsAsync(jobId, cancellationToken).GetAsyncEnumerator(cancellationToken);
        bool hasValidationError = await validationErrors.MoveNextAsync();

        await foreach (var report in _reports.ReadAllAsync(jobId, cancellationToken))
        {
            var items = await ShardItemsAsync(report, cancellationToken);
            while (hasValidationError && validationErrors.Current.Line <= report.Shard.LastLine)
            {
                items.Add((validationErrors.Current.Line, null, validationErrors.Current));
                hasValidationError = await validationErrors.MoveNextAsync();
            }
            foreach (var (_, outcome, error) in items.OrderBy(i => i.Line))
            {
                if (error is not null) { await errors.WriteLineAsync(OutputLines.FormatError(error)); continue; }
                await output.WriteLineAsync(OutputLines.FormatOutput(jobId, outcome!));
                input += outcome!.PromptTokens;
                outputTokens += outcome.CompletionTokens;
            }
        }
        for (; hasValidationError; hasValidationError = await validationErrors.MoveNextAsync())
            await errors.WriteLineAsync(OutputLines.FormatError(validationErrors.Current));

        await output.UploadAsync(blobs, JobIds.OutputBlob(jobId), cancellationToken);
        await errors.UploadAsync(blobs, JobIds.ErrorsBlob(jobId), cancellationToken);
        return new Totals(output.NumLines, errors.NumLines, input, outputTokens);
    }

    /// <summary>A shard's deduplicated outcomes as output or error items, plus <c>shard_failed</c>
    /// errors for the requests a dead-lettered shard never finished (or, defensively, a completed
    /// shard whose checkpoints lack a request), so every valid line ends up in exactly one file.</summary>
    private async Task<List<(int Line, RequestOutcome? Outcome, ErrorLine? Error)>> ShardItemsAsync(ShardReport report, CancellationToken cancellationToken)
    {
        var shard = report.Shard;
        var outcomes = await OutcomeDeduplication.DeduplicateAsync(
            checkpoints.ReadShardAsync(shard.JobId, shard.ShardIndex, cancellationToken), cancellationToken);
        var items = outcomes.Select(o => (o.LineNumber, o.Succeeded ? o : null, o.Succeeded ? null : ErrorLine.From(o))).ToList();
        bool deadLettered = report.State == ShardState.DeadLettered;
        if (!deadLettered && outcomes.Count >= shard.NumRequests) return items;
        var message = deadLettered ? $"shard {shard.ShardIndex} was dead-lettered: {report.Reason}" : $"shard {shard.ShardIndex} recorded no result for this request";

        var done = outcomes.Select(o => o.CustomId).ToHashSet(StringComparer.Ordinal);
        await foreach (var parsed in shard.ReadAsync(blobs, _parser, cancellationToken))
            if (done.Add(parsed.CustomId))
                items.Add((parsed.LineNumber, null, new ErrorLine(parsed.CustomId, RequestErrorCode.ShardFailed.SnakeCase(),
                    message, parsed.LineNumber)));
        return items;
    }

    private async IAsyncEnumerable<ErrorLine> ReadValidationErrorsAsync(string jobId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var stream = await blobs.OpenReadAsync(JobIds.ValidationErrorsBlob(jobId), null, cancellationToken);
        await foreach (var line in PhysicalLineReader.ReadAsync(stream, 0, 1, cancellationToken))
            if (!line.IsBlank) yield return JsonSerializer.Deserialize<ErrorLine>(line.Content, JsonDefaults.Options)!;
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

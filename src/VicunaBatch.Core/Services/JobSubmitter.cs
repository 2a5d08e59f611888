using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Core.Services;

/// <summary>A job to create from an input blob already in the blob store.</summary>
public sealed record JobSubmission(string InputBlob)
{
    /// <summary>Job id; null generates one (<see cref="JobIds.New"/>). Reusing an id makes the submit idempotent.</summary>
    public string? JobId { get; init; }

    /// <summary>Null: from the blob name (<c>.txt</c> → text, else JSONL).</summary>
    public InputFormat? Format { get; init; }

    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    public WebhookSettings? Webhook { get; init; }

    /// <summary>Time until <c>expires_at</c>. Default 24 hours.</summary>
    public TimeSpan CompletionWindow { get; init; } = TimeSpan.FromHours(24);

    /// <summary>The batch's one endpoint (an API batch): a line for another is an <c>unknown_endpoint</c> error line. Null:
    /// each line runs on its own (<c>run</c>, pipelines, the inbox).</summary>
    public BatchEndpoint? Endpoint { get; init; }

    /// <summary>
    /// Why the input is refused as a whole (OpenAI's batch <c>errors.data</c>), found before the submit; null: validate and
    /// run it. A refused job is created <c>validating</c> and saved <c>failed</c> with these errors, as OpenAI fails a batch
    /// whose file does not validate; nothing of the input is read or run. The API refuses a file with no valid line so;
    /// one with some runs them, its bad lines becoming error lines.
    /// </summary>
    public IReadOnlyList<JobError>? InvalidInput { get; init; }

    /// <summary>With <see cref="InvalidInput"/>: the model the refused input's lines name, the failed job's model as
    /// OpenAI's batch names it; null: the default model.</summary>
    public string? InvalidInputModel { get; init; }
}

/// <summary>
/// Validates the input, creates the job, writes plan + validation errors and one queue message per
/// shard. Idempotent per job id: a job past <c>validating</c> is returned as is; one left in
/// <c>validating</c> (crash mid-submit) is validated again and its messages re-sent (the queue drops
/// duplicates by message id; a shard that already ran skips its checkpointed requests).
/// A job with no valid requests has no shards: call <see cref="JobFinalizer.TryFinalizeAsync"/> right away. The job's
/// model is the one its lines name (<see cref="ServedModels.Resolve"/>), and its shards go to that model's queue; a model
/// not served, or two models in one file, fail the job (<c>model_not_found</c>) before any shard is sent.
/// </summary>
public sealed class JobSubmitter(IBlobStore blobs, IJobStore jobs, IWorkQueues queues, ServedModels models, InputOptions options, TimeProvider time)
{
    private readonly InputValidator _validator = new(options);

    public async Task<BatchJob> SubmitAsync(JobSubmission submission, CancellationToken cancellationToken = default)
    {
        var jobId = JobIds.Validate(submission.JobId ?? JobIds.New());
        var stored = await jobs.GetAsync(jobId, cancellationToken) ?? await CreateAsync(jobId, submission, cancellationToken);
        if (stored.Job.Status != JobStatus.Validating) return stored.Job;

        var job = stored.Job;
        if (submission.InvalidInput is { } invalid)
        {
            job.Model = submission.InvalidInputModel ?? models.Default;
            return await FailValidationAsync(job, stored.ETag, invalid, cancellationToken);
        }
        var format = submission.Format ?? InputOptions.FormatFromName(job.InputFileId);
        ValidationReport report;
        await using (var input = await blobs.OpenReadAsync(job.InputFileId, null, cancellationToken))
            report = await _validator.ValidateAsync(input, jobId, job.InputFileId, format, cancellationToken, submission.Endpoint);
        await WritePlanAsync(job, format, report, cancellationToken);

        var (model, modelError) = models.Resolve(report.Models);
        if (report.NumTotal == 0 || modelError is not null)
        {
            job.Model = report.Models.Count > 0 ? report.Models[0].Name : models.Default; // the model asked for, as OpenAI's names it
            return await FailValidationAsync(job, stored.ETag, [modelError ?? EmptyInput], cancellationToken);
        }
        job.Model = model;
        await queues.Of(model!).SendAsync(report.Shards.Select(s => new OutgoingMessage(s.MessageId, s.ToJson())).ToList(), cancellationToken);
        job.Endpoint = (report.Endpoint ?? BatchEndpoint.ChatCompletions).ToUrl();
        job.RequestCounts = new RequestCounts(report.NumTotal, 0, 0);
        job.Progress = new JobProgress(report.NumTotal, 0, report.Errors.Count, 0, 0, 0, report.Shards.Count);
        JobStateMachine.Transition(job, JobStatus.InProgress, time.GetUtcNow());
        return await SaveOrReloadAsync(job, stored.ETag, cancellationToken);
    }

    /// <summary>The job fails validation with <paramref name="errors"/> (an empty list still fails it, as an empty input).</summary>
    private Task<BatchJob> FailValidationAsync(BatchJob job, string etag, IReadOnlyList<JobError> errors, CancellationToken cancellationToken)
    {
        job.Errors = new JobErrors(errors.Count > 0 ? errors : [EmptyInput]);
        JobStateMachine.Transition(job, JobStatus.Failed, time.GetUtcNow());
        return SaveOrReloadAsync(job, etag, cancellationToken);
    }

    /// <summary>The error of an input with no requests and no bad lines.</summary>
    public static readonly JobError EmptyInput = new("empty_input", "the input file has no requests", null, null);

    private async Task<StoredJob> CreateAsync(string jobId, JobSubmission submission, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var job = new BatchJob
        {
            Id = jobId, Endpoint = BatchEndpoints.ChatCompletionsUrl, InputFileId = submission.InputBlob,
            CompletionWindow = $"{(int)submission.CompletionWindow.TotalHours}h",
            CreatedAt = now.ToUnixTimeSeconds(), ExpiresAt = (now + submission.CompletionWindow).ToUnixTimeSeconds(),
            Metadata = submission.Metadata, Webhook = submission.Webhook,
        };
        try
        {
            return new StoredJob(job, await jobs.SaveAsync(job, null, cancellationToken));
        }
        catch (JobStoreException e) when (e.Reason == JobStoreFailure.Conflict)
        {
            return await jobs.GetAsync(jobId, cancellationToken)
                ?? throw new JobStoreException(JobStoreFailure.Conflict, jobId, $"job {jobId} was created and removed concurrently", e);
        }
    }

    private async Task WritePlanAsync(BatchJob job, InputFormat format, ValidationReport report, CancellationToken cancellationToken)
    {
        var plan = new JobPlan(job.InputFileId, format, report.NumLines, report.NumRequests, report.Errors.Count, report.Shards.Count);
        var errors = new StringBuilder();
        foreach (var error in report.Errors)
            errors.Append(JsonSerializer.Serialize(ErrorLine.From(error), ResultsJson.Options)).Append('\n');
        await blobs.PutBytesAsync(JobIds.ValidationErrorsBlob(job.Id), Encoding.UTF8.GetBytes(errors.ToString()), BlobCondition.None, cancellationToken);
        var shards = new StringBuilder();
        foreach (var shard in report.Shards) shards.Append(shard.ToJson()).Append('\n');
        await blobs.PutBytesAsync(JobIds.PlanShardsBlob(job.Id), Encoding.UTF8.GetBytes(shards.ToString()), BlobCondition.None, cancellationToken);
        await blobs.PutBytesAsync(JobIds.PlanBlob(job.Id), JsonSerializer.SerializeToUtf8Bytes(plan, JobsJson.Options), BlobCondition.None, cancellationToken);
    }

    private async Task<BatchJob> SaveOrReloadAsync(BatchJob job, string etag, CancellationToken cancellationToken)
    {
        try
        {
            await jobs.SaveAsync(job, etag, cancellationToken);
            return job;
        }
        catch (JobStoreException e) when (e.Reason == JobStoreFailure.Conflict)
        {
            return (await jobs.GetAsync(job.Id, cancellationToken))?.Job
                ?? throw new JobStoreException(JobStoreFailure.Conflict, job.Id, $"job {job.Id} was removed concurrently", e);
        }
    }
}

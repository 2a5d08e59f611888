using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Core.Batches;

/// <summary>
/// Batches of tenants: creation through <see cref="JobSubmitter"/> with the owner recorded first, reads that
/// check the owner (another tenant's batch reads as missing), a newest-first list, and cancellation requests.
/// </summary>
public sealed class TenantBatches(IBlobStore blobs, IJobStore jobs, JobSubmitter submitter, TimeProvider time)
{
    /// <summary>The input file's holds (<see cref="FileCatalog.HoldAsync"/>): a running batch keeps its input when the file is deleted.</summary>
    private readonly FileCatalog _files = new(blobs, time);

    /// <summary>
    /// Writes the owner record (so no job is ever without its owner), the webhook secret and the index entry, then submits
    /// the job. Refused (<see cref="ArgumentException"/>) before anything is written; a create that fails before the job is
    /// stored removes what it wrote, so no record, secret or index entry names a job that does not exist. The input file's
    /// content is held for the job (released when it ends); <see cref="FileNotFoundException"/> when the file was deleted
    /// or expired meanwhile.
    /// </summary>
    public async Task<(BatchJob Job, BatchRecord Record)> CreateAsync(BatchCreation creation, CancellationToken cancellationToken = default)
    {
        if (creation.Webhook is not null && string.IsNullOrEmpty(creation.WebhookSecret))
            throw new ArgumentException("a webhook needs a signing secret", nameof(creation));
        if (creation.Metadata is { } metadata && MetadataLimits.Check(metadata) is { } problem) throw new ArgumentException(problem, nameof(creation));
        if (creation.OutputExpiresAfterSeconds is { } seconds && !FileExpiry.IsInRange(seconds))
            throw new ArgumentException($"output_expires_after.seconds must be in [{FileExpiry.MinSeconds}, {FileExpiry.MaxSeconds}]", nameof(creation));
        var jobId = JobIds.New();
        var now = time.GetUtcNow();
        var record = new BatchRecord(jobId, creation.Owner, creation.InputFile.Id, now.ToUnixTimeSeconds(), creation.OutputExpiresAfterSeconds);
        var written = new List<string>();
        try
        {
            await PutAsync(BatchRecord.Blob(jobId), JsonSerializer.SerializeToUtf8Bytes(record, BatchesJson.Options));
            if (creation.WebhookSecret is { } secret) await PutAsync(BatchRecord.WebhookSecretBlob(jobId), Encoding.UTF8.GetBytes(secret));
            await PutAsync(BatchRecord.IndexBlob(creation.Owner, jobId, now), []);
            written.Add(FileIds.HoldBlob(creation.InputFile.Id, jobId));
            if (!await _files.HoldAsync(creation.InputFile, jobId, cancellationToken))
                throw new FileNotFoundException($"input file {creation.InputFile.Id} was deleted or expired", creation.InputFile.Id);
            var job = await submitter.SubmitAsync(new JobSubmission(creation.InputFile.Blob)
            {
                JobId = jobId, Format = creation.InputFile.Format, Metadata = creation.Metadata, Endpoint = creation.Endpoint,
                Webhook = creation.Webhook, CompletionWindow = creation.CompletionWindow,
                InvalidInput = creation.InvalidInput, InvalidInputModel = creation.InvalidInputModel,
            }, cancellationToken);
            return (job, record);
        }
        catch (Exception)
        {
            await ForgetAsync(jobId, written);
            throw;
        }

        async Task PutAsync(string blob, byte[] content)
        {
            await blobs.PutBytesAsync(blob, content, BlobCondition.IfNotExists, cancellationToken);
            written.Add(blob);
        }
    }

    /// <summary>After a failed create: unless its job was stored (then it is the batch, and they are its), deletes what
    /// the create wrote, newest first. Best effort: the store that failed the create may fail this too, and the
    /// create's own failure is the one its caller must see.</summary>
    private async Task ForgetAsync(string jobId, List<string> written)
    {
        try
        {
            if (await jobs.GetAsync(jobId, CancellationToken.None) is not null) return;
            for (int i = written.Count - 1; i >= 0; i--) await blobs.DeleteAsync(written[i], CancellationToken.None);
        }
        catch (Exception e) when (e is BlobStoreException or JobStoreException) { }
    }

    /// <summary>The job and its record, or null when it does not exist or belongs to another tenant.</summary>
    public async Task<(StoredJob Stored, BatchRecord Record)?> GetAsync(string owner, string jobId, CancellationToken cancellationToken = default)
    {
        if (!JobIds.IsValid(jobId) || await ReadRecordAsync(jobId, cancellationToken) is not { } record || record.Owner != owner) return null;
        return await jobs.GetAsync(jobId, cancellationToken) is { } stored ? (stored, record) : null;
    }

    /// <summary>Up to <paramref name="limit"/> batches created before <paramref name="after"/> (a batch id; null: from the newest).</summary>
    public async Task<BatchPage> ListAsync(string owner, string? after, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var items = new List<(BatchJob, BatchRecord)>();
        bool skipping = after is not null;
        await foreach (var name in blobs.ListAsync(BatchRecord.IndexPrefix(owner), cancellationToken))
        {
            var jobId = BatchRecord.JobIdOfIndexBlob(name);
            if (skipping) { skipping = jobId != after; continue; }
            if (await GetAsync(owner, jobId, cancellationToken) is not { } found) continue; // creation interrupted
            if (items.Count == limit) return new BatchPage(items, HasMore: true);
            items.Add((found.Stored.Job, found.Record));
        }
        return new BatchPage(items, HasMore: false);
    }

    /// <summary>Moves the tenant's job to <c>cancelling</c>; workers skip its shards that have not started, and
    /// <see cref="JobFinalizer.TryCancelAsync"/> completes the cancellation once every shard has settled.</summary>
    public async Task<(CancelOutcome Outcome, BatchJob? Job)> CancelAsync(string owner, string jobId, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            if (await GetAsync(owner, jobId, cancellationToken) is not { } found) return (CancelOutcome.NotFound, null);
            var job = found.Stored.Job;
            if (job.Status == JobStatus.Cancelling) return (CancelOutcome.Cancelling, job);
            if (!JobStateMachine.CanTransition(job.Status, JobStatus.Cancelling)) return (CancelOutcome.NotCancellable, job);
            JobStateMachine.Transition(job, JobStatus.Cancelling, time.GetUtcNow());
            try
            {
                await jobs.SaveAsync(job, found.Stored.ETag, cancellationToken);
                return (CancelOutcome.Cancelling, job);
            }
            catch (JobStoreException e) when (e.Reason == JobStoreFailure.Conflict) { } // changed meanwhile: decide again
        }
    }

    /// <summary>A running job's progress, request counts and usage as of the shard reports and the running shards'
    /// progress records so far (the stored job is updated only when it finishes); other jobs are returned unchanged.</summary>
    public async Task<BatchJob> WithCurrentProgressAsync(BatchJob job, CancellationToken cancellationToken = default)
    {
        // finalizing too: its stored counts are still the submit's until the merge ends
        if (job.Status is not (JobStatus.InProgress or JobStatus.Finalizing or JobStatus.Cancelling) || !await blobs.ExistsAsync(JobIds.PlanBlob(job.Id), cancellationToken))
            return job;
        var progress = await new ShardReports(blobs).GetRunningProgressAsync(job.Id, cancellationToken);
        job.Progress = progress;
        job.RequestCounts = new RequestCounts(progress.Total, progress.Completed, progress.Failed);
        job.Usage = new BatchUsage(progress.InputTokens, progress.OutputTokens, progress.InputTokens + progress.OutputTokens);
        return job;
    }

    /// <summary>
    /// The job as its owner sees it: output and error blobs replaced by file ids (registered as the owner's files on
    /// first sight), so the API's batch object and the webhook event name the same downloadable files.
    /// </summary>
    /// <param name="known">The job's record when the caller has read it; null: read here.</param>
    public async Task<BatchJob> WithFileIdsAsync(BatchJob job, FileCatalog files, CancellationToken cancellationToken = default, BatchRecord? known = null)
    {
        if ((known ?? await ReadRecordAsync(job.Id, cancellationToken)) is not { } record) return job;
        job.OutputFileId = await FileIdAsync(job.OutputFileId, "output");
        job.ErrorFileId = await FileIdAsync(job.ErrorFileId, "errors");
        return job;

        async Task<string?> FileIdAsync(string? blob, string kind) =>
            blob is null ? null : (await files.RegisterJobFileAsync(record.Owner, record.JobId, kind, blob, record.OutputExpiresAfter, cancellationToken))?.Id;
    }

    /// <summary>
    /// Moves the batches of tenant <paramref name="from"/> to <paramref name="to"/> (<see cref="TenantRename"/>): for each
    /// index entry, the record is given the new owner (if unchanged meanwhile), the entry made under the new tenant, then
    /// the old one deleted. Each step is idempotent, so a run that stopped anywhere is finished by the next. Returns how
    /// many entries moved.
    /// </summary>
    public async Task<int> RenameOwnerAsync(string from, string to, CancellationToken cancellationToken = default)
    {
        var entries = new List<string>();
        await foreach (var name in blobs.ListAsync(BatchRecord.IndexPrefix(from), cancellationToken)) entries.Add(name);
        foreach (var entry in entries)
        {
            var jobId = BatchRecord.JobIdOfIndexBlob(entry);
            await RenameRecordOwnerAsync(jobId, from, to, cancellationToken);
            try { await blobs.PutBytesAsync(BatchRecord.IndexPrefix(to) + entry[BatchRecord.IndexPrefix(from).Length..], [], BlobCondition.IfNotExists, cancellationToken); }
            catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed) { } // made by a run that stopped before the delete
            await blobs.DeleteAsync(entry, cancellationToken);
        }
        return entries.Count;
    }

    private async Task RenameRecordOwnerAsync(string jobId, string from, string to, CancellationToken cancellationToken)
    {
        if (!JobIds.IsValid(jobId)) return;
        var name = BatchRecord.Blob(jobId);
        while (true)
        {
            // no record (a creation interrupted before it) or one already renamed: nothing to do
            if (await blobs.GetPropertiesAsync(name, cancellationToken) is not { } properties
                || await ReadRecordAsync(jobId, cancellationToken) is not { } record || record.Owner != from) return;
            try
            {
                await blobs.PutBytesAsync(name, JsonSerializer.SerializeToUtf8Bytes(record with { Owner = to }, BatchesJson.Options),
                    BlobCondition.IfMatch(properties.ETag), cancellationToken);
                return;
            }
            catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed) { } // changed meanwhile: read it again
        }
    }

    /// <summary>The job's webhook signing secret, or null when it has none. Never log it.</summary>
    public async Task<string?> GetWebhookSecretAsync(string jobId, CancellationToken cancellationToken = default)
    {
        try { return Encoding.UTF8.GetString(await blobs.ReadBytesAsync(BatchRecord.WebhookSecretBlob(jobId), cancellationToken)); }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.NotFound) { return null; }
    }

    /// <summary>The batch's record, or null when there is none (no such batch, or a create that failed before it).</summary>
    public async Task<BatchRecord?> ReadRecordAsync(string jobId, CancellationToken cancellationToken = default)
    {
        try { return JsonSerializer.Deserialize<BatchRecord>(await blobs.ReadBytesAsync(BatchRecord.Blob(jobId), cancellationToken), BatchesJson.Options); }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.NotFound) { return null; }
    }
}

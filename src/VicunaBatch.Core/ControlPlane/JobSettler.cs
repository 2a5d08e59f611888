using VicunaBatch.Core.Batches;
using VicunaBatch.Core.Diagnostics;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Core.ControlPlane;

/// <summary>A job this call ended, and what happened to its webhook event.</summary>
public sealed record JobEnding(BatchJob Job, WebhookEnqueueResult Webhook);

/// <summary>
/// The control plane's one reaction to "a job may have ended" (a shard-done event, the expiry sweep, a
/// submit with nothing to run): finalize it when every shard has reported, complete a settled cancellation,
/// or expire it past its window; when that ended the job, its webhook event goes to the outbox with the
/// file ids the API shows. Every step is idempotent, so duplicate and late events are harmless.
/// </summary>
public sealed class JobSettler(JobFinalizer finalizer, TenantBatches batches, FileCatalog files, WebhookOutbox outbox, IBlobStore blobs)
{
    /// <summary>
    /// Finalizes the job or settles its cancellation; null when the job did not end by this call. A job that had already
    /// ended but was never announced (its <see cref="JobIds.AnnouncedBlob"/> missing) is announced now: the process
    /// that ended it stopped before its event reached the outbox, and the event that brought us here is a redelivery.
    /// </summary>
    public async Task<JobEnding?> SettleAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var result = await finalizer.TryFinalizeAsync(jobId, cancellationToken);
        if (result.Status == FinalizeStatus.Finalized) return await EndAsync(result.Job, cancellationToken);
        var cancelled = await finalizer.TryCancelAsync(jobId, cancellationToken);
        if (cancelled.Status == FinalizeStatus.Finalized) return await EndAsync(cancelled.Job, cancellationToken);
        if (JobStateMachine.IsTerminal(cancelled.Job.Status) && !await blobs.ExistsAsync(JobIds.AnnouncedBlob(jobId), cancellationToken))
            await EndAsync(cancelled.Job, cancellationToken);
        return null;
    }

    /// <summary>
    /// A job just submitted (the API's create, the inbox): one that ended at submit (failed validation: no valid line, a
    /// model not served, an empty input) is announced now, and one with nothing to run (every line refused: no shard
    /// will report) is finalized now, each through <see cref="SettleAsync"/> as any ending is; the job as it stands.
    /// </summary>
    public async Task<BatchJob> SettleSubmittedAsync(BatchJob job, CancellationToken cancellationToken = default)
    {
        if (!JobStateMachine.IsTerminal(job.Status) && job is not { Status: JobStatus.InProgress, Progress.ShardsTotal: 0 }) return job;
        return (await SettleAsync(job.Id, cancellationToken))?.Job ?? job;
    }

    /// <summary>Expires the job when it is past <c>expires_at</c> (<see cref="JobFinalizer.TryExpireAsync"/>); null when it did not end by this call.</summary>
    public async Task<JobEnding?> ExpireAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var result = await finalizer.TryExpireAsync(jobId, cancellationToken);
        return result.Status == FinalizeStatus.Finalized ? await EndAsync(result.Job, cancellationToken) : null;
    }

    /// <summary>A job reached a terminal status: its hold on its input file goes (a deleted file's content with it), and its
    /// event goes to the outbox (idempotent per event id).</summary>
    private async Task<JobEnding> EndAsync(BatchJob job, CancellationToken cancellationToken)
    {
        CrashPoints.Hit(CrashPoints.JobAfterEnd, job.Id);
        var record = await batches.ReadRecordAsync(job.Id, cancellationToken);
        if (record is not null) await files.ReleaseHoldAsync(record.InputFileId, job.Id, cancellationToken);
        // the event names the files as the API does (file ids the receiver can download)
        job = await batches.WithFileIdsAsync(job, files, cancellationToken, record);
        var enqueued = await outbox.EnqueueAsync(job, cancellationToken);
        await blobs.PutBytesAsync(JobIds.AnnouncedBlob(job.Id), [], BlobCondition.None, cancellationToken);
        return new JobEnding(job, enqueued);
    }
}

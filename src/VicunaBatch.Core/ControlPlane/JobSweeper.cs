using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Core.ControlPlane;

/// <summary>What one sweep did: jobs it expired, jobs it sent a finalize check for, and jobs that had ended unannounced
/// whose event it put in the outbox.</summary>
public sealed record SweepResult(IReadOnlyList<JobEnding> Expired, IReadOnlyList<string> Rechecked, IReadOnlyList<string> Announced);

/// <summary>
/// The periodic safety net of the control plane (the Functions timer; a one-machine host's loop). One listing of
/// <c>jobs/</c> finds every job folder with its number of shard reports (<see cref="JobListing"/>); per unfinished job
/// (one read of <c>job.json</c>, plus the plan for a running one): a job past <c>expires_at</c> is expired with its
/// partial results (<see cref="JobSettler.ExpireAsync"/>); a running, finalizing or cancelling job whose shards have all
/// reported gets a <see cref="ShardDoneEvent"/> on the shard-done queue, so a lost event — or a process that stopped
/// between a shard's last report and its job's finalization — cannot strand it; a job that ended but was never announced
/// (no <see cref="JobIds.AnnouncedBlob"/>: a process stopped between its ending and the outbox, as a batch failed at
/// create can be, for which no shard-done event will ever come) is announced (<see cref="JobSettler.SettleAsync"/>). A
/// job the listing shows announced is done with and not read.
/// </summary>
public sealed class JobSweeper(
    IBlobStore blobs, IJobStore jobs, JobSettler settler, IWorkQueue shardDone, TimeProvider time, ILogger<JobSweeper>? logger = null)
{
    private readonly ILogger _logger = logger ?? (ILogger)NullLogger.Instance;

    public async Task<SweepResult> SweepAsync(CancellationToken cancellationToken = default)
    {
        var expired = new List<JobEnding>();
        var rechecks = new List<ShardDoneEvent>();
        var announced = new List<string>();
        await foreach (var (jobId, numReports, isAnnounced) in JobListing.ListAsync(blobs, cancellationToken))
        {
            if (isAnnounced) continue;
            if (await jobs.GetAsync(jobId, cancellationToken) is not { } stored) continue;
            var job = stored.Job;
            // due, or expired by a sweep that crashed before its files were written
            bool expire = job is { Status: JobStatus.Expired, OutputFileId: null }
                || (!JobStateMachine.IsTerminal(job.Status) && job.ExpiresAt is { } at && time.GetUtcNow().ToUnixTimeSeconds() >= at);
            if (expire && await settler.ExpireAsync(jobId, cancellationToken) is { } ending) { expired.Add(ending); continue; }
            if (JobStateMachine.IsTerminal(job.Status))
            {
                await settler.SettleAsync(jobId, cancellationToken);
                announced.Add(jobId);
                continue;
            }
            if (job.Status is not (JobStatus.InProgress or JobStatus.Finalizing or JobStatus.Cancelling)) continue;
            int numShards = await blobs.ExistsAsync(JobIds.PlanBlob(jobId), cancellationToken)
                ? (await ShardReports.ReadPlanAsync(blobs, jobId, cancellationToken)).NumShards : 0;
            if (numReports >= numShards) rechecks.Add(new ShardDoneEvent(jobId, Math.Max(0, numShards - 1)));
        }
        if (rechecks.Count > 0) await shardDone.SendAsync(rechecks.Select(e => e.ToMessage()).ToList(), cancellationToken);
        foreach (var ended in expired) _logger.LogInformation("job {JobId} expired; webhook {Webhook}", ended.Job.Id, ended.Webhook.SnakeCase());
        foreach (var recheck in rechecks) _logger.LogInformation("job {JobId}: every shard reported; finalize check sent", recheck.JobId);
        foreach (var jobId in announced) _logger.LogInformation("job {JobId} had ended unannounced; announced now", jobId);
        return new SweepResult(expired, rechecks.Select(e => e.JobId).ToList(), announced);
    }

    /// <summary>A one-machine host's timer (<see cref="SweepTimer"/>): a sweep now (what an earlier process left unfinished), then every <paramref name="interval"/>, until cancelled.</summary>
    public Task RunAsync(TimeSpan interval, CancellationToken cancellationToken = default) =>
        SweepTimer.RunAsync(SweepAsync, "jobs", interval, time, _logger, cancellationToken);
}

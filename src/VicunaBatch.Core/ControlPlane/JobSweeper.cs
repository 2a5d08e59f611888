using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Core.ControlPlane;

/// <summary>What one sweep did: jobs it expired, and jobs it sent a finalize check for.</summary>
public sealed record SweepResult(IReadOnlyList<JobEnding> Expired, IReadOnlyList<string> Rechecked);

/// <summary>
/// The periodic safety net of the control plane (the Functions timer). One listing of <c>jobs/</c> finds every
/// job folder with its number of shard reports; per unfinished job (one read of <c>job.json</c>, plus the plan
/// for a running one): a job past <c>expires_at</c> is expired with its partial results
/// (<see cref="JobSettler.ExpireAsync"/>); a running, finalizing or cancelling job whose shards have all
/// reported gets a <see cref="ShardDoneEvent"/> through <c>recheck</c> (on Azure: the shard-done queue), so a lost
/// event cannot strand it.
/// </summary>
public sealed class JobSweeper(IBlobStore blobs, IJobStore jobs, JobSettler settler, Func<IReadOnlyList<ShardDoneEvent>, CancellationToken, Task> recheck, TimeProvider time)
{
    /// <summary>Rechecks go to <paramref name="shardDone"/>, where the finalizer reads them.</summary>
    public JobSweeper(IBlobStore blobs, IJobStore jobs, JobSettler settler, IWorkQueue shardDone, TimeProvider time)
        : this(blobs, jobs, settler, (events, ct) => shardDone.SendAsync(events.Select(e => e.ToMessage()).ToList(), ct), time) { }

    private const string Prefix = "jobs/";

    public async Task<SweepResult> SweepAsync(CancellationToken cancellationToken = default)
    {
        var expired = new List<JobEnding>();
        var rechecks = new List<ShardDoneEvent>();
        await foreach (var (jobId, numReports) in ListJobsAsync(cancellationToken))
        {
            if (await jobs.GetAsync(jobId, cancellationToken) is not { } stored) continue;
            var job = stored.Job;
            // due, or expired by a sweep that crashed before its files were written
            bool expire = job is { Status: JobStatus.Expired, OutputFileId: null }
                || (!JobStateMachine.IsTerminal(job.Status) && job.ExpiresAt is { } at && time.GetUtcNow().ToUnixTimeSeconds() >= at);
            if (expire && await settler.ExpireAsync(jobId, cancellationToken) is { } ending) { expired.Add(ending); continue; }
            if (job.Status is not (JobStatus.InProgress or JobStatus.Finalizing or JobStatus.Cancelling)) continue;
            int numShards = await blobs.ExistsAsync(JobIds.PlanBlob(jobId), cancellationToken)
                ? (await ShardReports.ReadPlanAsync(blobs, jobId, cancellationToken)).NumShards : 0;
            if (numReports >= numShards) rechecks.Add(new ShardDoneEvent(jobId, Math.Max(0, numShards - 1)));
        }
        if (rechecks.Count > 0) await recheck(rechecks, cancellationToken);
        return new SweepResult(expired, rechecks.Select(e => e.JobId).ToList());
    }

    /// <summary>Job folders that hold a <c>job.json</c>, with their number of shard reports, from one ordinal listing.</summary>
    private async IAsyncEnumerable<(string JobId, int NumReports)> ListJobsAsync(
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? current = null;
        bool hasJob = false;
        int numReports = 0;
        await foreach (var name in blobs.ListAsync(Prefix, cancellationToken))
        {
            int slash = name.IndexOf('/', Prefix.Length);
            if (slash < 0) continue;
            var jobId = name[Prefix.Length..slash];
            if (jobId != current)
            {
                if (current is not null && hasJob && JobIds.IsValid(current)) yield return (current, numReports);
                (current, hasJob, numReports) = (jobId, false, 0);
            }
            var rest = name[(slash + 1)..];
            if (rest == "job.json") hasJob = true;
            else if (rest.StartsWith("shards/", StringComparison.Ordinal)) numReports++;
        }
        if (current is not null && hasJob && JobIds.IsValid(current)) yield return (current, numReports);
    }
}

using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Jobs;

/// <summary>Thrown for a transition the job lifecycle does not allow; names both states.</summary>
public sealed class JobStateException(string jobId, JobStatus from, JobStatus to)
    : InvalidOperationException($"job {jobId}: illegal transition from {from.SnakeCase()} to {to.SnakeCase()}")
{
    public string JobId { get; } = jobId;
    public JobStatus From { get; } = from;
    public JobStatus To { get; } = to;
}

/// <summary>
/// Legal transitions of <see cref="BatchJob.Status"/>; each stamps its timestamp:
/// validating → in_progress | failed | cancelling | expired;
/// in_progress → finalizing | failed | cancelling | expired;
/// finalizing → completed | failed | expired; cancelling → cancelled.
/// completed, failed, expired, cancelled are terminal.
/// </summary>
public static class JobStateMachine
{
    private static readonly Dictionary<JobStatus, JobStatus[]> Allowed = new()
    {
        [JobStatus.Validating] = [JobStatus.InProgress, JobStatus.Failed, JobStatus.Cancelling, JobStatus.Expired],
        [JobStatus.InProgress] = [JobStatus.Finalizing, JobStatus.Failed, JobStatus.Cancelling, JobStatus.Expired],
        [JobStatus.Finalizing] = [JobStatus.Completed, JobStatus.Failed, JobStatus.Expired],
        [JobStatus.Cancelling] = [JobStatus.Cancelled],
    };

    public static bool CanTransition(JobStatus from, JobStatus to) =>
        Allowed.TryGetValue(from, out var targets) && targets.Contains(to);

    public static bool IsTerminal(JobStatus status) => !Allowed.ContainsKey(status);

    /// <summary>Moves the job to <paramref name="to"/> and stamps the matching <c>*_at</c> field.</summary>
    /// <exception cref="JobStateException">The transition is not legal.</exception>
    public static void Transition(BatchJob job, JobStatus to, DateTimeOffset now)
    {
        if (!CanTransition(job.Status, to)) throw new JobStateException(job.Id, job.Status, to);
        long at = now.ToUnixTimeSeconds();
        switch (to)
        {
            case JobStatus.InProgress: job.InProgressAt = at; break;
            case JobStatus.Finalizing: job.FinalizingAt = at; break;
            case JobStatus.Completed: job.CompletedAt = at; break;
            case JobStatus.Failed: job.FailedAt = at; break;
            case JobStatus.Expired: job.ExpiredAt = at; break;
            case JobStatus.Cancelling: job.CancellingAt = at; break;
            case JobStatus.Cancelled: job.CancelledAt = at; break;
        }
        job.Status = to;
    }
}

using Microsoft.Azure.Functions.Worker;
using VicunaBatch.Core.ControlPlane;

namespace VicunaBatch.Functions;

/// <summary>
/// Every 5 minutes, <see cref="JobSweeper.SweepAsync"/>: jobs past their completion window become <c>expired</c>
/// with their partial results (and their webhook goes out); running, finalizing or cancelling jobs whose shards have
/// all reported get a shard-done event again, so a lost event cannot strand a job.
/// </summary>
public sealed class SweepFunction(JobSweeper sweeper)
{
    public const string Schedule = "0 */5 * * * *";

    [Function("Sweep")]
    public Task<SweepResult> RunAsync([TimerTrigger(Schedule)] TimerInfo timer, CancellationToken cancellationToken) =>
        sweeper.SweepAsync(cancellationToken);
}

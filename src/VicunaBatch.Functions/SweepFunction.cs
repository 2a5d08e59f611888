using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Functions;

/// <summary>
/// Every 5 minutes, <see cref="JobSweeper.SweepAsync"/>: jobs past their completion window become <c>expired</c>
/// with their partial results (and their webhook goes out); running jobs whose shards have all reported get a
/// shard-done event again, so a lost event cannot strand a job.
/// </summary>
public sealed class SweepFunction(JobSweeper sweeper, ILogger<SweepFunction> logger)
{
    public const string Schedule = "0 */5 * * * *";

    [Function("Sweep")]
    public async Task<SweepResult> RunAsync([TimerTrigger(Schedule)] TimerInfo timer, CancellationToken cancellationToken)
    {
        var result = await sweeper.SweepAsync(cancellationToken);
        foreach (var ended in result.Expired)
            logger.LogInformation("job {JobId} expired; webhook {Webhook}", ended.Job.Id, ended.Webhook.SnakeCase());
        foreach (var jobId in result.Rechecked) logger.LogInformation("job {JobId}: every shard reported; finalize check sent", jobId);
        return result;
    }
}

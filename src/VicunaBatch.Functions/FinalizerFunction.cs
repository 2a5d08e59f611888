using System.Text.Json;
using Azure.Storage.Queues.Models;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;
using VicunaBatch.Azure;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Functions;

/// <summary>
/// Shard-done events (Storage queue <c>Storage__Queues__ShardDone</c>) → <see cref="JobSettler.SettleAsync"/>: the job
/// is finalized once every shard has reported (or its cancellation completed) and its webhook goes to the outbox.
/// A message that is not a shard-done event, or names a job that does not exist, is logged and dropped (returning
/// lets the host delete it); any other failure throws, so the host retries and, after host.json's
/// <c>maxDequeueCount</c>, moves the message to <c>shard-done-poison</c>.
/// </summary>
public sealed class FinalizerFunction(JobSettler settler, ILogger<FinalizerFunction> logger)
{
    [Function("Finalizer")]
    public async Task RunAsync(
        [QueueTrigger("%Storage:Queues:ShardDone%", Connection = "Storage")] QueueMessage message, CancellationToken cancellationToken)
    {
        ShardDoneEvent done;
        try { done = ShardDoneEvent.Parse(StorageWorkQueue.BodyOf(message)); }
        catch (JsonException e)
        {
            logger.LogWarning("dropped shard-done message {MessageId}: {Reason}", message.MessageId, e.Message);
            return;
        }

        JobEnding? ended;
        try { ended = await settler.SettleAsync(done.JobId, cancellationToken); }
        catch (ArgumentException e) when (e.ParamName == "jobId")
        {
            logger.LogWarning("dropped shard-done event of shard {ShardId}: job {JobId} does not exist", done.ShardIndex, done.JobId);
            return;
        }
        if (ended is not null)
            logger.LogInformation("job {JobId} ended: {Status}; webhook {Webhook}", done.JobId, ended.Job.Status.SnakeCase(), ended.Webhook.SnakeCase());
    }
}

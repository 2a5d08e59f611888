using System.Text.Json;
using Microsoft.Extensions.Logging;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Core.ControlPlane;

/// <summary>Options of <see cref="ShardDoneHandler.RunAsync"/>, the in-process reader of the shard-done queue.</summary>
public sealed class ShardDoneHandlerOptions
{
    /// <summary>Longest wait on an empty queue before receiving again (a local queue wakes the reader at once). Default 1 s.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A message whose handling failed this often is dead-lettered with the reason. Default 10.</summary>
    public int MaxDeliveries { get; init; } = 10;

    /// <summary>Wait before a failed message is received again, doubling with each delivery up to 1 min. Default 1 s.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// The one settled-shard path of every host: a shard-done event (a worker, any worker, settled a shard) makes
/// <see cref="JobSettler"/> finalize the job once every shard has reported, or complete its cancellation. The Functions
/// app calls <see cref="HandleAsync"/> from its queue trigger; one-machine hosts (serve, run, pipeline run) read the
/// data folder's shard-done queue with <see cref="RunAsync"/>. A malformed event, or one of a job that does not exist,
/// is logged and dropped; any other failure throws, for the queue to deliver the event again.
/// </summary>
public sealed class ShardDoneHandler(JobSettler settler, ILogger<ShardDoneHandler> logger, ShardDoneHandlerOptions? options = null)
{
    private readonly ShardDoneHandlerOptions _options = options ?? new();

    /// <summary>Settles the job of one shard-done message body; the job's ending when this call ended it.</summary>
    public async Task<JobEnding?> HandleAsync(string body, CancellationToken cancellationToken = default)
    {
        ShardDoneEvent done;
        try { done = ShardDoneEvent.Parse(body); }
        catch (JsonException e)
        {
            logger.LogWarning("dropped a shard-done message: {Reason}", e.Message);
            return null;
        }
        JobEnding? ended;
        try { ended = await settler.SettleAsync(done.JobId, cancellationToken); }
        catch (ArgumentException e) when (e.ParamName == "jobId")
        {
            logger.LogWarning("dropped the shard-done event of shard {ShardId}: job {JobId} does not exist", done.ShardIndex, done.JobId);
            return null;
        }
        if (ended is not null)
            logger.LogInformation("job {JobId} ended: {Status}; webhook {Webhook}", done.JobId, ended.Job.Status.SnakeCase(), ended.Webhook.SnakeCase());
        return ended;
    }

    /// <summary>
    /// Reads <paramref name="shardDone"/> until cancelled, handling each event and then completing it; a failure is
    /// logged and the event received again after a growing delay, then dead-lettered after
    /// <see cref="ShardDoneHandlerOptions.MaxDeliveries"/>. <paramref name="onEnded"/> hears of each job ended here.
    /// </summary>
    public async Task RunAsync(IWorkQueue shardDone, Action<JobEnding>? onEnded = null, CancellationToken cancellationToken = default)
    {
        try
        {
            while (true)
            {
                IReadOnlyList<ReceivedMessage> messages;
                try { messages = await shardDone.ReceiveAsync(16, cancellationToken); }
                catch (WorkQueueException e) when (e.IsTransient)
                {
                    logger.LogWarning(e, "receiving shard-done events failed; retrying");
                    messages = [];
                }
                if (messages.Count == 0) await shardDone.WaitForMessagesAsync(_options.PollInterval, cancellationToken);
                foreach (var message in messages) await HandleMessageAsync(shardDone, message, onEnded, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { }
    }

    private async Task HandleMessageAsync(IWorkQueue shardDone, ReceivedMessage message, Action<JobEnding>? onEnded, CancellationToken cancellationToken)
    {
        try
        {
            var ended = await HandleAsync(message.Body, cancellationToken);
            await shardDone.CompleteAsync(message, cancellationToken);
            if (ended is not null) onEnded?.Invoke(ended);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogError(e, "handling shard-done message {MessageId} failed (delivery {Delivery})", message.MessageId, message.DeliveryCount);
            try
            {
                if (message.DeliveryCount >= _options.MaxDeliveries)
                    await shardDone.DeadLetterAsync(message, $"handling failed {message.DeliveryCount} times: {e.Message}", cancellationToken);
                else
                    await shardDone.AbandonAsync(message, RetryDelayOf(message.DeliveryCount), cancellationToken);
            }
            catch (WorkQueueException settle) { logger.LogWarning(settle, "shard-done message {MessageId} stays locked until its lock expires", message.MessageId); }
        }
    }

    private TimeSpan RetryDelayOf(int deliveryCount) =>
        TimeSpan.FromTicks(Math.Min(TimeSpan.FromMinutes(1).Ticks, _options.RetryDelay.Ticks << Math.Min(deliveryCount - 1, 6)));
}

using Azure.Storage.Queues.Models;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;
using VicunaBatch.Azure;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Functions;

/// <summary>
/// Webhook deliveries (Storage queue <c>Storage__Queues__WebhookDeliveries</c>) → one <see cref="WebhookDeliverer"/>
/// attempt, which settles the message itself on the queue: deleted when delivered, hidden for the next delay of the
/// Standard Webhooks schedule when not (the message's dequeue count is the attempt number), moved to
/// <c>webhook-deliveries-poison</c> with the reason after the last attempt (about 27 h), every attempt recorded in
/// <c>jobs/{id}/webhook_deliveries.jsonl</c>. The host's own delete after the function returns then finds a changed
/// pop receipt or no message, which it ignores. host.json's <c>maxDequeueCount</c> is above the deliverer's attempts,
/// so the host's poison handling only catches messages whose handling kept throwing.
/// </summary>
public sealed class DelivererFunction(ControlPlaneQueues queues, WebhookDeliverer deliverer, ILogger<DelivererFunction> logger)
{
    [Function("Deliverer")]
    public async Task RunAsync(
        [QueueTrigger("%Storage:Queues:WebhookDeliveries%", Connection = FunctionsOptions.QueueTriggerConnection)] QueueMessage message, CancellationToken cancellationToken)
    {
        var received = queues.WebhookDeliveries.Track(message);
        if (await deliverer.DeliverAsync(received, cancellationToken) is not { } attempt) return;
        if (attempt.Outcome == WebhookAttemptOutcome.Delivered)
            logger.LogInformation("webhook {EventId} delivered on attempt {Attempt}", attempt.EventId, attempt.Attempt);
        else
            logger.LogWarning("webhook {EventId} attempt {Attempt}: {Outcome} ({Error}); next at {NextAttemptAt}",
                attempt.EventId, attempt.Attempt, attempt.Outcome.SnakeCase(), attempt.Error ?? $"HTTP {attempt.StatusCode}", attempt.NextAttemptAt);
    }
}

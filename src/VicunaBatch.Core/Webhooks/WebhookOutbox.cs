using System.Text.Json;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Webhooks;

/// <summary>An outbox message: one event for one URL, with the exact body every attempt signs and sends.</summary>
public sealed record WebhookDelivery(string EventId, string EventType, string JobId, string Url, string Payload)
{
    public string ToJson() => JsonSerializer.Serialize(this, WebhooksJson.Options);

    /// <exception cref="JsonException">Not a delivery message.</exception>
    public static WebhookDelivery Parse(string json)
    {
        var delivery = JsonSerializer.Deserialize<WebhookDelivery>(json, WebhooksJson.Options);
        if (delivery is null || string.IsNullOrEmpty(delivery.EventId) || string.IsNullOrEmpty(delivery.JobId)
            || string.IsNullOrEmpty(delivery.Url) || delivery.Payload is null)
            throw new JsonException("webhook delivery message lacks event_id, job_id, url or payload");
        return delivery;
    }
}

public enum WebhookEnqueueResult
{
    /// <summary>The event is in the outbox (or already was: the message id is the event id).</summary>
    Enqueued,
    /// <summary>The job has no webhook.</summary>
    NoWebhook,
    /// <summary>The webhook's <c>events</c> filter leaves this event out.</summary>
    NotSubscribed,
}

/// <summary>
/// Puts a finished job's event in the outbox queue (a queue of its own, e.g. "webhooks"). The message
/// id is the event id, so a finalizer that enqueues twice leaves one message; the deliverer's log check
/// covers an enqueue that arrives after the first was delivered.
/// </summary>
public sealed class WebhookOutbox(IWorkQueue outbox)
{
    /// <exception cref="ArgumentException">The job is not in a terminal status.</exception>
    public async Task<WebhookEnqueueResult> EnqueueAsync(BatchJob job, CancellationToken cancellationToken = default)
    {
        if (job.Webhook is not { } webhook) return WebhookEnqueueResult.NoWebhook;
        var evt = WebhookEvent.For(job);
        if (!WebhookEvent.IsSubscribed(webhook, WebhookEvent.TypeFor(job.Status)!.Value)) return WebhookEnqueueResult.NotSubscribed;
        var delivery = new WebhookDelivery(evt.Id, evt.Type, job.Id, webhook.Url, evt.ToJson());
        await EnqueueAsync(delivery, cancellationToken);
        return WebhookEnqueueResult.Enqueued;
    }

    /// <summary>Puts a ready-made delivery (e.g. a pipeline run event) in the outbox; the message id is its event id.</summary>
    public Task EnqueueAsync(WebhookDelivery delivery, CancellationToken cancellationToken = default) =>
        outbox.SendAsync([new OutgoingMessage(delivery.EventId, delivery.ToJson())], cancellationToken);
}

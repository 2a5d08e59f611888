using Azure.Storage.Queues.Models;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Functions;

/// <summary>
/// A file dropped in the inbox container (<c>Storage__Containers__Inbox</c>) becomes a job. The storage account's
/// Event Grid system topic writes each BlobCreated event of that container to the Storage queue
/// <c>Storage__Queues__InboxEvents</c> (infra/bicep/modules/inbox-events.bicep; Event Grid schema); this trigger
/// parses it (<see cref="BlobCreatedEvent"/>), maps <c>data.url</c> to the blob name (<see cref="InboxAddress"/>) and
/// calls <see cref="InboxSubmitter"/>: the job id comes from the blob name and its ETag, so a redelivered event finds
/// the same job. Not the Event Grid blob trigger: its webhook subscription would need the extension's system key in
/// the template. A malformed event, another account's or container's blob, or an invalid blob name is logged and
/// dropped (returning lets the host delete the message); any other failure throws, so the host retries and, after
/// host.json's <c>maxDequeueCount</c>, moves the message to <c>inbox-events-poison</c>.
/// </summary>
public sealed class InboxFunction(InboxSubmitter inbox, InboxAddress address, ILogger<InboxFunction> logger)
{
    [Function("Inbox")]
    public async Task<BatchJob?> RunAsync(
        [QueueTrigger("%Storage:Queues:InboxEvents%", Connection = FunctionsOptions.QueueTriggerConnection)] QueueMessage message, CancellationToken cancellationToken)
    {
        BlobCreatedEvent created;
        try { created = BlobCreatedEvent.Parse(message.MessageText); }
        catch (FormatException e)
        {
            logger.LogWarning("dropped inbox event message {MessageId}: {Reason}", message.MessageId, e.Message);
            return null;
        }
        if (address.BlobNameOf(created.Url) is not { } name)
        {
            logger.LogWarning("dropped event {EventId}: {Url} is not in container {Container} of account {Account}",
                created.Id, created.Url, address.ContainerName, address.AccountName);
            return null;
        }

        BatchJob? job;
        try { job = await inbox.SubmitAsync(name, cancellationToken); }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.InvalidName)
        {
            logger.LogWarning("dropped event {EventId}: inbox blob {Blob} has a name jobs cannot use ({Reason})", created.Id, name, e.Message);
            return null;
        }
        if (job is null) logger.LogWarning("inbox blob {Blob} is gone; nothing submitted (event {EventId})", name, created.Id);
        else if (job.Metadata?.GetValueOrDefault("inbox_etag")?.Trim('"') is { } etag && etag != created.ETag.Trim('"'))
            logger.LogInformation("inbox blob {Blob} changed since event {EventId} (ETag {EventETag}); its current version {ETag} is job {JobId}: {Status}",
                name, created.Id, created.ETag, etag, job.Id, job.Status.SnakeCase());
        else logger.LogInformation("inbox blob {Blob} is job {JobId}: {Status}", name, job.Id, job.Status.SnakeCase());
        return job;
    }
}

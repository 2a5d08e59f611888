using Azure.Storage.Blobs;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;
using VicunaBatch.Core;

namespace VicunaBatch.Functions;

/// <summary>
/// A file dropped in the inbox container (<c>Storage__Containers__Inbox</c>) becomes a job
/// (<see cref="InboxSubmitter"/>: job id from the blob name and ETag, so a retried trigger submits nothing twice).
/// Event Grid source: the only blob trigger Flex Consumption runs (it needs an Event Grid subscription on the
/// storage account's BlobCreated events for the inbox container, pointing at this function).
/// </summary>
public sealed class InboxFunction(InboxSubmitter inbox, ILogger<InboxFunction> logger)
{
    [Function("Inbox")]
    public async Task<BatchJob?> RunAsync(
        [BlobTrigger("%Storage:Containers:Inbox%/{name}", Connection = "Storage", Source = BlobTriggerSource.EventGrid)] BlobClient blob,
        CancellationToken cancellationToken)
    {
        var job = await inbox.SubmitAsync(blob.Name, cancellationToken);
        if (job is null) logger.LogWarning("inbox blob {Blob} is gone; nothing submitted", blob.Name);
        else logger.LogInformation("inbox blob {Blob} is job {JobId}: {Status}", blob.Name, job.Id, job.Status.SnakeCase());
        return job;
    }
}

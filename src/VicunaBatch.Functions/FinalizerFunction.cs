using Azure.Storage.Queues.Models;
using Microsoft.Azure.Functions.Worker;
using VicunaBatch.Azure;
using VicunaBatch.Core.ControlPlane;

namespace VicunaBatch.Functions;

/// <summary>
/// Shard-done events (Storage queue <c>Storage__Queues__ShardDone</c>) → <see cref="ShardDoneHandler.HandleAsync"/>, the
/// settled-shard path of every host: the job is finalized once every shard has reported (or its cancellation
/// completed) and its webhook goes to the outbox. A message that is not a shard-done event, or names a job that does
/// not exist, is logged and dropped (returning lets the host delete it); any other failure throws, so the host retries
/// and, after host.json's <c>maxDequeueCount</c>, moves the message to <c>shard-done-poison</c>.
/// </summary>
public sealed class FinalizerFunction(ShardDoneHandler handler)
{
    [Function("Finalizer")]
    public Task RunAsync(
        [QueueTrigger("%Storage:Queues:ShardDone%", Connection = FunctionsOptions.QueueTriggerConnection)] QueueMessage message, CancellationToken cancellationToken) =>
        handler.HandleAsync(StorageWorkQueue.BodyOf(message), cancellationToken);
}

using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;


namespace VicunaBatch.Worker;

/// <summary>
/// Where a worker gets shards and puts results: the work queue (Service Bus on Azure, SQLite locally), the blob
/// store holding inputs and shard reports, the checkpoint store, and the control-plane queue that gets a
/// <see cref="ShardDoneEvent"/> per settled shard (the <c>shard-done</c> Storage queue on Azure); on Azure also the
/// storage account client the model package is copied through (<c>Model:SourceUri</c>), null locally.
/// </summary>
public sealed record WorkerTransport(IWorkQueue WorkQueue, IBlobStore Blobs, ICheckpointStore Checkpoints, IWorkQueue ShardDone,
    global::Azure.Storage.Blobs.BlobServiceClient? ModelStorage = null);

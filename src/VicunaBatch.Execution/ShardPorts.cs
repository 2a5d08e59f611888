using VicunaBatch.Core.Ports;

namespace VicunaBatch.Execution;

/// <summary>
/// Where an <see cref="EngineWorker"/> gets shards and puts results, from the transport a host registered
/// (<c>AddLocalTransport</c> or <c>AddAzureTransport</c>): its model's work queue, the blob store holding inputs and shard
/// reports, the checkpoint store, the job store (a cancelled job's shards are skipped), and the shard-done queue.
/// </summary>
public sealed record ShardPorts(IWorkQueue Work, IBlobStore Blobs, ICheckpointStore Checkpoints, IJobStore Jobs, IWorkQueue ShardDone);

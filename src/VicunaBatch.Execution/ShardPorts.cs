using VicunaBatch.Core.Ports;

namespace VicunaBatch.Execution;

/// <summary>
/// Where an <see cref="EngineWorker"/> gets shards and puts results, from the transport a host registered
/// (<c>AddLocalTransport</c> or <c>AddAzureTransport</c>): the model it serves, by the name the deployment serves it
/// (<c>ServedModels</c>: the <c>model</c> of every output, the one source of the worker's model name) and that model's
/// work queue, the blob store holding inputs and shard reports, the checkpoint store, the job store (a cancelled job's
/// shards are skipped), and the shard-done queue.
/// </summary>
public sealed record ShardPorts(string Model, IWorkQueue Work, IBlobStore Blobs, ICheckpointStore Checkpoints, IJobStore Jobs, IWorkQueue ShardDone);

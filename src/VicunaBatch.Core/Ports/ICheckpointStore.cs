using VicunaBatch.Core.Results;

namespace VicunaBatch.Core.Ports;

/// <summary>Durable per-request results of running shards. Appends are at-least-once:
/// readers may see the same custom_id more than once and must deduplicate.</summary>
public interface ICheckpointStore
{
    /// <summary>Durably records one outcome (on disk when the task completes).</summary>
    Task AppendAsync(string jobId, int shardIndex, RequestOutcome outcome, CancellationToken cancellationToken = default);

    /// <summary>Outcomes of one shard in append order.</summary>
    IAsyncEnumerable<RequestOutcome> ReadShardAsync(string jobId, int shardIndex, CancellationToken cancellationToken = default);

    /// <summary>Outcomes of every shard of the job, shard by shard in index order.</summary>
    IAsyncEnumerable<RequestOutcome> ReadJobAsync(string jobId, CancellationToken cancellationToken = default);

    /// <summary>custom_ids of the shard that already have an outcome.</summary>
    Task<IReadOnlySet<string>> GetDoneCustomIdsAsync(string jobId, int shardIndex, CancellationToken cancellationToken = default);
}

public enum CheckpointStoreFailure
{
    InvalidName,
    Unavailable,
}

public sealed class CheckpointStoreException(CheckpointStoreFailure reason, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public CheckpointStoreFailure Reason { get; } = reason;
    public bool IsTransient => Reason == CheckpointStoreFailure.Unavailable;
}

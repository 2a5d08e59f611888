using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Execution;

/// <summary>
/// The prefetch rule of every host of an engine: another shard is taken while fewer than <see cref="Capacities"/> ×
/// the engine's KV slots of requests are in flight (running and waiting), so the waiting pool stays at or above what
/// the engine runs at once — also while the shards held wait for their last, longest requests.
/// </summary>
public sealed record EnginePrefetch(EngineHost Host, int NumSlots, int Capacities = EnginePrefetch.DefaultCapacities)
{
    /// <summary>A worker's: shards it does not need stay on the queue for the other workers.</summary>
    public const int DefaultCapacities = 2;

    /// <summary>
    /// A one-machine host's (run, pipeline run, serve): its engine is the only one, and the more of a job it sees, the
    /// better longest-first admission orders it (docs/performance.md, "`run` on the GPU").
    /// </summary>
    public const int LocalCapacities = 8;

    /// <summary>Most shards a one-machine host holds (2,048 requests of 64-request shards).</summary>
    public const int MaxLocalShards = 32;

    public bool WantsWork() => Host.NumInFlight < Capacities * NumSlots;
}

using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Execution;

/// <summary>How an <see cref="EngineWorker"/> takes and runs shards.</summary>
public sealed class EngineWorkerOptions
{
    /// <summary>Most shards held at once; their requests all share the engine. Default 16.</summary>
    public int MaxConcurrentShards { get; init; } = 16;

    /// <summary>Shards held at once without asking the engine; more only while it wants work. Default 0: each is asked for.</summary>
    public int MinConcurrentShards { get; init; }

    /// <summary>
    /// The prefetch rule (<see cref="EnginePrefetch"/>): another shard is taken while fewer than this many engine
    /// capacities (KV slots) of requests are in flight. Default <see cref="EnginePrefetch.DefaultCapacities"/>.
    /// </summary>
    public int PrefetchCapacities { get; init; } = EnginePrefetch.DefaultCapacities;

    /// <summary>Wait between polls of an empty queue, and after a transient receive failure. Default 100 ms.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Generation parameters of requests that do not set them.</summary>
    public RequestDefaults Defaults { get; init; } = new();

    /// <summary>Input parsing limits; must match the submitter's (shards carry line ranges, not parsed requests).</summary>
    public InputOptions Input { get; init; } = new();

    /// <summary>Poison threshold and lock renewal of each shard.</summary>
    public ShardProcessorOptions Processor { get; init; } = new();

    /// <summary>
    /// A one-machine host's (run, pipeline run, serve): its engine is the only one, so it holds <paramref name="workers"/>
    /// shards at once (on the CPU, where the slots are few, those are all) and takes more while fewer than
    /// <see cref="EnginePrefetch.LocalCapacities"/> × its slots of requests are in flight, up to
    /// <see cref="EnginePrefetch.MaxLocalShards"/>: the more of a job its longest-first admission sees, the better it orders it.
    /// </summary>
    public static EngineWorkerOptions OneMachine(int workers, RequestDefaults? defaults = null, InputOptions? input = null) => new()
    {
        MinConcurrentShards = workers,
        MaxConcurrentShards = Math.Max(workers, EnginePrefetch.MaxLocalShards),
        PrefetchCapacities = EnginePrefetch.LocalCapacities,
        Defaults = defaults ?? new RequestDefaults(),
        Input = input ?? new InputOptions(),
    };

    public void Validate()
    {
        new ShardPumpOptions { MinConcurrentShards = MinConcurrentShards, MaxConcurrentShards = MaxConcurrentShards, PollInterval = PollInterval }.Validate();
        ArgumentOutOfRangeException.ThrowIfLessThan(PrefetchCapacities, 1, nameof(PrefetchCapacities));
        Defaults.Validate();
        Input.Validate();
        Processor.Validate();
    }
}

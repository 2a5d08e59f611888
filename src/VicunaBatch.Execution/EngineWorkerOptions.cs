using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Execution;

/// <summary>How an <see cref="EngineWorker"/> takes and runs shards.</summary>
public sealed class EngineWorkerOptions
{
    /// <summary>How many shards are held at once and how often an empty queue is polled (<see cref="ShardPumpOptions"/>'s defaults).</summary>
    public ShardPumpOptions Pump { get; init; } = new();

    /// <summary>
    /// The prefetch rule (<see cref="EnginePrefetch"/>): another shard is taken while fewer than this many engine
    /// capacities (KV slots) of requests are in flight. Default <see cref="EnginePrefetch.DefaultCapacities"/>.
    /// </summary>
    public int PrefetchCapacities { get; init; } = EnginePrefetch.DefaultCapacities;

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
    /// Its shards rewrite their progress records every <see cref="OneMachineProgressInterval"/>: the store is a local
    /// folder, where a small write costs little, so a batch's counts follow its requests closely.
    /// </summary>
    public static EngineWorkerOptions OneMachine(int workers, RequestDefaults? defaults = null, InputOptions? input = null) => new()
    {
        Pump = new ShardPumpOptions { MinConcurrentShards = workers, MaxConcurrentShards = Math.Max(workers, EnginePrefetch.MaxLocalShards) },
        PrefetchCapacities = EnginePrefetch.LocalCapacities,
        Defaults = defaults ?? new RequestDefaults(),
        Input = input ?? new InputOptions(),
        Processor = new ShardProcessorOptions { ProgressInterval = OneMachineProgressInterval },
    };

    /// <summary>How often, at most, a one-machine host's running shard rewrites its progress record.</summary>
    public static readonly TimeSpan OneMachineProgressInterval = TimeSpan.FromMilliseconds(50);

    public void Validate()
    {
        Pump.Validate();
        ArgumentOutOfRangeException.ThrowIfLessThan(PrefetchCapacities, 1, nameof(PrefetchCapacities));
        Defaults.Validate();
        Input.Validate();
        Processor.Validate();
    }
}

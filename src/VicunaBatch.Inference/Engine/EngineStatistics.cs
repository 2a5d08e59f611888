namespace VicunaBatch.Inference.Engine;

/// <summary>Running totals over engine steps, for benchmarks and metrics.</summary>
public sealed class EngineStatistics
{
    public long NumSteps { get; private set; }

    public long NumDecodeTokens { get; private set; }

    public long NumPrefillTokens { get; private set; }

    public TimeSpan StepTime { get; private set; }

    /// <summary>Requests preempted by recompute (paged KV out of blocks); their recomputed tokens count as prefill.</summary>
    public long NumPreemptions { get; private set; }

    /// <summary>Choices that took their prompt's KV from a fork (<see cref="GenerationRequest.NumChoices"/>) instead of computing it.</summary>
    public long NumForkedChoices { get; private set; }

    /// <summary>Prompt tokens those forks did not compute again.</summary>
    public long NumForkedTokens { get; private set; }

    /// <summary>
    /// Prompt tokens (after a preemption: prompt and output) whose KV admitted requests took from the prefix cache
    /// (<see cref="EngineOptions.PrefixCache"/>) instead of computing them; not in <see cref="NumPrefillTokens"/>.
    /// </summary>
    public long NumCachedPromptTokens { get; private set; }

    /// <summary>Cached KV blocks no request held that the pool handed out again (the least recently used first).</summary>
    public long NumEvictedBlocks { get; private set; }

    /// <summary><c>sampler.onnx</c> runs (<see cref="SamplingSite.Graph"/>): one per decoder call that had sampled rows.</summary>
    public long NumGraphSamplings { get; private set; }

    /// <summary>Wall time of those runs (part of <see cref="StepTime"/>).</summary>
    public TimeSpan GraphSamplingTime { get; private set; }

    /// <summary><c>logprobs.onnx</c> runs: one per decoder call that had picks asking for log probabilities.</summary>
    public long NumGraphLogprobRuns { get; private set; }

    /// <summary>Wall time of those runs (part of <see cref="StepTime"/>).</summary>
    public TimeSpan GraphLogprobTime { get; private set; }

    /// <summary>Logits rows brought to the host for the engine to read (<see cref="StepOutputs.NumLogitRowsRead"/>): one per
    /// step of each request the graphs did not pick for.</summary>
    public long NumLogitRowsRead { get; private set; }

    private double _occupancySum;

    /// <summary>Mean over steps of the share of KV slots holding a request.</summary>
    public double MeanBatchOccupancy => NumSteps == 0 ? 0 : _occupancySum / NumSteps;

    internal void RecordFork(KvFork fork)
    {
        NumForkedChoices++;
        NumForkedTokens += fork.NumTokens;
    }

    internal void Record(StepPlan plan, int slotsInUse, int numSlots, TimeSpan elapsed, long numPreemptions = 0, StepOutputs? outputs = null,
        long numEvictedBlocks = 0)
    {
        NumEvictedBlocks = numEvictedBlocks;
        NumGraphSamplings += outputs?.GraphSamplings ?? 0;
        GraphSamplingTime += outputs?.GraphSamplingTime ?? TimeSpan.Zero;
        NumGraphLogprobRuns += outputs?.GraphLogprobRuns ?? 0;
        GraphLogprobTime += outputs?.GraphLogprobTime ?? TimeSpan.Zero;
        NumLogitRowsRead += outputs?.NumLogitRowsRead ?? 0;
        NumPreemptions = numPreemptions;
        NumSteps++;
        NumDecodeTokens += plan.NumDecodes;
        NumPrefillTokens += plan.Prefills.Sum(p => p.TokenIds.Length);
        NumCachedPromptTokens += plan.NumCachedTokens;
        StepTime += elapsed;
        _occupancySum += (double)slotsInUse / numSlots;
    }
}

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

    /// <summary>Requests preempted to host memory instead (<see cref="EngineOptions.KvSwapSpaceBytes"/>): resumed, nothing recomputed.</summary>
    public long NumSwapOuts { get; private set; }

    /// <summary>KV blocks copied to host memory and back.</summary>
    public long NumSwappedOutBlocks { get; private set; }

    public long NumSwappedInBlocks { get; private set; }

    /// <summary>Time the runner spent copying swapped KV, outside the steps' time.</summary>
    public TimeSpan SwapTime { get; private set; }

    /// <summary>Tokens of KV copied to host memory (each comes back once its request resumes).</summary>
    public long NumSwappedOutTokens { get; private set; }

    /// <summary>Tokens (decodes and prompt chunks) of the steps that computed prompt tokens, over <see cref="PrefillStepTime"/>.</summary>
    public long PrefillStepTokens { get; private set; }

    /// <summary>
    /// Whether preempting to host memory costs less than recomputing, by this engine's own measurements: the swap time a
    /// token swapped out (its copy out and back in) against the time a token of the steps that computed prompts. True
    /// until both were measured (the first preemption swaps); a host link slower than the engine computes prompts
    /// (a slow bus, a small model) then turns preemption back to recompute.
    /// </summary>
    public bool SwapPays =>
        NumSwappedOutTokens == 0 || PrefillStepTokens == 0
        || SwapTime.TotalSeconds / NumSwappedOutTokens <= PrefillStepTime.TotalSeconds / PrefillStepTokens;

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

    /// <summary>Steps that only decoded (no prompt chunk), their wall time, and the bytes they must move (<see cref="StepCost.Bytes"/>).</summary>
    public long NumDecodeOnlySteps { get; private set; }

    public TimeSpan DecodeOnlyTime { get; private set; }

    public double DecodeOnlyBytes { get; private set; }

    /// <summary>Steps with a prompt chunk, their wall time, and their FLOPs (<see cref="StepCost.Flops"/>).</summary>
    public long NumPrefillSteps { get; private set; }

    public TimeSpan PrefillStepTime { get; private set; }

    public double PrefillStepFlops { get; private set; }

    /// <summary>Achieved bytes per second of the decode-only steps by the cost model (0 when not counted).</summary>
    public double DecodeBytesPerSecond => DecodeOnlyTime > TimeSpan.Zero ? DecodeOnlyBytes / DecodeOnlyTime.TotalSeconds : 0;

    /// <summary>Achieved FLOPs per second of the steps with a prompt chunk by the cost model (0 when not counted).</summary>
    public double PrefillFlopsPerSecond => PrefillStepTime > TimeSpan.Zero ? PrefillStepFlops / PrefillStepTime.TotalSeconds : 0;

    private double _occupancySum;

    /// <summary>Mean over steps of the share of KV slots holding a request.</summary>
    public double MeanBatchOccupancy => NumSteps == 0 ? 0 : _occupancySum / NumSteps;

    internal void RecordFork(KvFork fork)
    {
        NumForkedChoices++;
        NumForkedTokens += fork.NumTokens;
    }

    internal void RecordSwaps(StepPlan plan, TimeSpan elapsed, long numSwapOuts)
    {
        NumSwapOuts = numSwapOuts;
        NumSwappedOutBlocks += plan.SwapOuts.Length;
        NumSwappedOutTokens += plan.SwapOuts.Sum(c => c.NumTokens);
        NumSwappedInBlocks += plan.SwapIns.Length;
        SwapTime += elapsed;
    }

    internal void Record(StepPlan plan, int slotsInUse, int numSlots, TimeSpan elapsed, long numPreemptions = 0, StepOutputs? outputs = null,
        StepCost? cost = null, long numEvictedBlocks = 0)
    {
        NumEvictedBlocks = numEvictedBlocks;
        if (cost is not null && plan.Prefills.IsEmpty)
        {
            NumDecodeOnlySteps++;
            DecodeOnlyTime += elapsed;
            DecodeOnlyBytes += cost.Bytes(plan);
        }
        else if (cost is not null)
        {
            NumPrefillSteps++;
            PrefillStepTime += elapsed;
            PrefillStepTokens += plan.NumScheduledTokens;
            PrefillStepFlops += cost.Flops(plan);
        }
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

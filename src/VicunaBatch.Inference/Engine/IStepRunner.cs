using System.Collections.Immutable;

namespace VicunaBatch.Inference.Engine;

/// <summary>Executes a step plan on a model and returns the logits the sampler needs.</summary>
public interface IStepRunner : IDisposable
{
    int VocabSize { get; }

    /// <summary>Most requests running at once (the scheduler's batch cap).</summary>
    int NumSlots { get; }

    /// <summary>Longest sequence the KV cache holds.</summary>
    int MaxLength { get; }

    long KvCacheBytes { get; }

    /// <summary>Bytes of one element of the KV cache (2 for float16 and bfloat16, 4 for float32, 1 for int8).</summary>
    int KvElementBytes { get; }

    /// <summary>Bytes of one element of the graph's activations and float weights (2 for float16 and bfloat16, 4 for
    /// float32): the precision of the embedding table and of the matmul weights, whatever the KV cache stores.</summary>
    int ActivationElementBytes { get; }

    /// <summary>The graph picks the argmax (its <c>greedy_ids</c> output): for greedy <see cref="StepPlan.GraphPicks"/> only
    /// the token id is read, not a <c>[vocab]</c> row of logits (on CUDA the logits then stay on the device).</summary>
    bool SelectsGreedyInGraph => false;

    /// <summary>Sampled <see cref="StepPlan.GraphPicks"/> (no top-k) are drawn by <c>sampler.onnx</c> where the logits
    /// are (<see cref="SamplingSite"/>): only the token id is read.</summary>
    bool SamplesInGraph => false;

    /// <summary>The log probabilities of <see cref="GraphPick.TakesLogprobs"/> picks are taken by <c>logprobs.onnx</c> where
    /// the logits are, with the sampler graph (<see cref="SamplingSite"/>): no logits row is read for them.</summary>
    bool TakesLogprobsInGraph => false;

    /// <summary>Decode calls replay as CUDA graphs (<see cref="EngineOptions.CudaGraphs"/>).</summary>
    bool ReplaysCudaGraphs => false;

    StepOutputs Execute(StepPlan plan);

    /// <summary>The runner copies KV within its memory (<see cref="CopyKv"/>): n choices of one prompt share its prefill.</summary>
    bool CopiesKv => false;

    /// <summary>Makes <paramref name="fork"/>'s copies in every layer's keys and values, between steps; returns when they are done.</summary>
    void CopyKv(KvFork fork) => throw new NotSupportedException($"{GetType().Name} does not copy KV");

    /// <summary>
    /// KV blocks of host memory that hold preempted requests' KV (<see cref="EngineOptions.KvSwapSpaceBytes"/>): a
    /// request preempted while they have room is swapped out and later back in, not recomputed. 0: none.
    /// </summary>
    int NumSwapBlocks => 0;

    /// <summary>Copies each device block's first rows into its host block (<see cref="StepPlan.SwapOuts"/>), every layer's keys and values; returns when done.</summary>
    void SwapOut(ImmutableArray<KvUnitCopy> copies) => throw new NotSupportedException($"{GetType().Name} does not swap KV");

    /// <summary>Copies each host block's first rows into its device block (<see cref="StepPlan.SwapIns"/>), every layer's keys and values; returns when done.</summary>
    void SwapIn(ImmutableArray<KvUnitCopy> copies) => throw new NotSupportedException($"{GetType().Name} does not swap KV");
}

namespace VicunaBatch.Inference.Engine;

/// <summary>Executes a step plan on a model and returns the logits the sampler needs.</summary>
public interface IStepRunner : IDisposable
{
    int VocabSize { get; }

    /// <summary>KV slots: requests that can decode at once. Paged KV: requests running at once (the batch cap).</summary>
    int NumSlots { get; }

    /// <summary>Longest sequence a KV slot (or a request's block table) holds.</summary>
    int MaxLength { get; }

    /// <summary>Paged KV (ONNX_CONTRACT.md variant B): the block pool's size; null for KV slots (variant A).</summary>
    KvBlocks? Blocks => null;

    long KvCacheBytes { get; }

    /// <summary>The graph picks the argmax (its <c>greedy_ids</c> output): for greedy <see cref="StepPlan.GraphPicks"/> only
    /// the token id is read, not a <c>[vocab]</c> row of logits (on CUDA the logits then stay on the device).</summary>
    bool SelectsGreedyInGraph => false;

    /// <summary>Sampled <see cref="StepPlan.GraphPicks"/> (no top-k) are drawn by <c>sampler.onnx</c> where the logits
    /// are (<see cref="SamplingSite"/>): only the token id is read.</summary>
    bool SamplesInGraph => false;

    /// <summary>Decode calls replay as CUDA graphs (<see cref="EngineOptions.CudaGraphs"/>).</summary>
    bool ReplaysCudaGraphs => false;

    StepOutputs Execute(StepPlan plan);
}

/// <summary>A paged KV cache: <paramref name="NumBlocks"/> blocks of <paramref name="BlockSize"/> tokens, shared by every request.</summary>
public sealed record KvBlocks(int NumBlocks, int BlockSize);

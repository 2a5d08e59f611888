namespace VicunaBatch.Inference.Engine;

/// <summary>Executes a step plan on a model and returns the logits the sampler needs.</summary>
public interface IStepRunner : IDisposable
{
    int VocabSize { get; }

    /// <summary>KV slots: requests that can decode at once.</summary>
    int NumSlots { get; }

    /// <summary>Longest sequence a KV slot holds.</summary>
    int MaxLength { get; }

    long KvCacheBytes { get; }

    StepOutputs Execute(StepPlan plan);
}

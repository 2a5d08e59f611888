namespace VicunaBatch.Inference.Engine;

/// <summary>
/// The engine's scheduling policy: which requests run this step and with how many tokens. <see cref="Scheduler"/> for
/// KV slots (GroupQueryAttention), <see cref="PagedScheduler"/> for KV blocks (PagedAttention).
/// </summary>
internal interface IScheduler
{
    int NumWaiting { get; }

    int NumRunning { get; }

    bool HasWork { get; }

    /// <summary>Requests sent back to the queue to be recomputed because KV memory ran out.</summary>
    long NumPreemptions { get; }

    void Add(Sequence sequence);

    StepPlan Schedule();

    /// <summary>Ends a running or waiting request and gives its KV memory back.</summary>
    void Finish(Sequence sequence);
}

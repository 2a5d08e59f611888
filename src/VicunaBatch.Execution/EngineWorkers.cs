using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Logging;
using VicunaBatch.Inference;

namespace VicunaBatch.Execution;

/// <summary>
/// A model's engines on one machine (one per GPU: <see cref="LoadedModel.OpenEach"/>), each the chain of an
/// <see cref="EngineWorker"/> of its own on the same <see cref="ShardPorts"/>: every pump receives from the model's one
/// work queue and takes a shard while its own engine wants work (<see cref="EnginePrefetch"/>), so the engines share the
/// queue as separate workers would, and their settled shards reach the one control plane the same way. One engine is
/// the chain alone. What every host that runs a model (run, pipeline run, serve, vicuna-worker) runs.
/// </summary>
public sealed class EngineWorkers : IAsyncDisposable
{
    private readonly List<EngineWorker> _workers = [];
    private readonly List<string> _labels = [];

    /// <param name="hooks">Each engine's hooks, by its index in <paramref name="models"/>.</param>
    public EngineWorkers(IReadOnlyList<LoadedModel> models, ShardPorts ports, EngineWorkerOptions options, TimeProvider time,
        ILogger? logger = null, Func<int, EngineWorkerHooks>? hooks = null)
    {
        ArgumentOutOfRangeException.ThrowIfZero(models.Count);
        foreach (var (model, index) in models.Select((m, i) => (m, i)))
        {
            _workers.Add(new EngineWorker(model, ports, options, time, logger, hooks?.Invoke(index)));
            _labels.Add(LabelOf(model, index));
        }
    }

    /// <summary>The engines' workers, in the order of their models.</summary>
    public IReadOnlyList<EngineWorker> All => _workers;

    /// <summary>What progress lines, logs, health and metrics call each engine: <c>GPU 1</c>, or <c>engine 0</c> on the CPU.</summary>
    public IReadOnlyList<string> Labels => _labels;

    /// <summary>The label of <paramref name="model"/>'s engine, the <paramref name="index"/>th of its host.</summary>
    public static string LabelOf(LoadedModel model, int index) => model.Gpu is { } gpu ? $"GPU {gpu}" : $"engine {index}";

    public long NumSucceeded => _workers.Sum(w => w.Executor.NumSucceeded);

    public long NumFailed => _workers.Sum(w => w.Executor.NumFailed);

    public long NumOutputTokens => _workers.Sum(w => w.Executor.NumOutputTokens);

    /// <summary>Requests submitted to the engines and not yet finished.</summary>
    public int NumInFlight => _workers.Sum(w => w.Host.NumInFlight);

    /// <summary>
    /// Every engine takes shards as <see cref="EngineWorker.RunAsync"/> says, until each has stopped. An engine that
    /// fails stops the others as a cancellation does (their shards held go back to the queue, their finished requests
    /// stay checkpointed), and its error is thrown.
    /// </summary>
    public async Task RunAsync(Func<CancellationToken, Task<bool>> isDone, CancellationToken stopTaking = default, CancellationToken cancellationToken = default)
    {
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var running = _workers.Select(w => w.RunAsync(isDone, stopTaking, failed.Token)).ToList();
        Exception? failure = null;
        for (var pending = running.ToList(); pending.Count > 0;)
        {
            var stopped = await Task.WhenAny(pending);
            pending.Remove(stopped);
            if (stopped.IsFaulted && failure is null)
            {
                failure = stopped.Exception!.InnerException!;
                await failed.CancelAsync();
            }
        }
        if (failure is not null) ExceptionDispatchInfo.Throw(failure);
        await Task.WhenAll(running); // a cancellation of the caller's
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var worker in _workers) await worker.DisposeAsync();
    }
}

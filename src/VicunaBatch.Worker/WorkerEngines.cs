using Microsoft.Extensions.Configuration;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Worker;

/// <summary>
/// The engines the worker runs its model on, all fed from its one queue (<c>EngineWorkers</c>): with <c>Engine:Device</c>
/// <c>Cuda</c>, one per GPU of <c>Engine:Gpus</c> (<c>0,1</c>; unset: every GPU the process sees, <see cref="GpuChoice"/>);
/// on the CPU, <c>Engine:CpuEngines</c> (default 1; more only runs the several-engine path where there is no GPU, as the
/// tests do). The settings are checked at startup; the GPUs against those present when the model loads.
/// </summary>
public sealed class WorkerEngines
{
    private readonly EngineOptions _options;

    private WorkerEngines(EngineOptions options, IReadOnlyList<int>? gpus, int numCpuEngines) =>
        (_options, Gpus, NumCpuEngines) = (options, gpus, numCpuEngines);

    /// <summary><c>Engine:Gpus</c>; null: every visible GPU.</summary>
    public IReadOnlyList<int>? Gpus { get; }

    /// <summary><c>Engine:CpuEngines</c>.</summary>
    public int NumCpuEngines { get; }

    /// <summary>The settings of <c>Engine</c> beside <paramref name="options"/> (bound from the same section), checked.</summary>
    public static WorkerEngines From(IConfiguration configuration, EngineOptions options)
    {
        IReadOnlyList<int>? gpus = null;
        if (configuration["Engine:Gpus"] is { } text)
        {
            gpus = GpuChoice.Parse(text) ?? throw new ArgumentException($"Engine:Gpus \"{text}\": GPU numbers separated by commas (0,1)");
            if (options.Device != ExecutionDevice.Cuda)
                throw new ArgumentException("Engine:Gpus chooses GPUs: it needs Engine:Device Cuda (on the CPU the model runs on one engine)");
        }
        var numCpuEngines = configuration.GetValue("Engine:CpuEngines", 1);
        if (configuration["Engine:CpuEngines"] is not null && options.Device == ExecutionDevice.Cuda)
            throw new ArgumentException("Engine:CpuEngines is for the CPU; with Engine:Device Cuda the model runs on one engine a GPU: choose them with Engine:Gpus");
        if (numCpuEngines < 1) throw new ArgumentOutOfRangeException("Engine:CpuEngines", numCpuEngines, "must be at least 1");
        return new WorkerEngines(options, gpus, numCpuEngines);
    }

    /// <summary>
    /// The options of each engine: one per GPU (each <see cref="EngineOptions.OnGpu"/>), of the <paramref name="numVisibleGpus"/>
    /// the process sees (asked on CUDA only); a GPU not present is an error naming those there are.
    /// </summary>
    public IReadOnlyList<EngineOptions> Each(Func<int> numVisibleGpus)
    {
        if (_options.Device != ExecutionDevice.Cuda) return [.. Enumerable.Repeat(_options, NumCpuEngines)];
        var numVisible = numVisibleGpus();
        if (GpuChoice.Problem(Gpus, numVisible) is { } problem)
            throw new InvalidOperationException(Gpus is null ? $"Engine:Device Cuda: {problem}" : $"Engine:Gpus {string.Join(',', Gpus)}: {problem}");
        return [.. GpuChoice.Resolve(Gpus, numVisible).Select(_options.OnGpu)];
    }
}

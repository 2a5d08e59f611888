using System.Globalization;
using VicunaBatch.Inference.Onnx;

namespace VicunaBatch.Inference;

/// <summary>
/// Which GPUs a host runs a model on, one engine per GPU (<see cref="Engine.EngineOptions.OnGpu"/>): the GPUs a host's
/// setting names (<c>--gpus 0,1</c>, the worker's <c>Engine:Gpus</c>), each present and named once, or, when it names
/// none, every GPU the process sees. One rule for every host, which says its problems in its own setting's terms.
/// </summary>
public static class GpuChoice
{
    /// <summary>The GPU numbers of <c>0,1</c> (commas, spaces around them allowed); null when the text is not such a list.</summary>
    public static IReadOnlyList<int>? Parse(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var gpus = new List<int>(parts.Length);
        foreach (var part in parts)
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var gpu)) return null;
            gpus.Add(gpu);
        }
        return gpus;
    }

    /// <summary>
    /// What is wrong with running on <paramref name="chosen"/> (null: every GPU) when the process sees
    /// <paramref name="numVisible"/> GPUs, numbered from 0; null when nothing is.
    /// </summary>
    public static string? Problem(IReadOnlyList<int>? chosen, int numVisible)
    {
        if (numVisible == 0) return "no CUDA GPU is visible to this process (the driver, or CUDA_VISIBLE_DEVICES)";
        if (chosen is null) return null;
        if (chosen.Count == 0) return "names no GPU";
        if (chosen.FirstOrDefault(gpu => gpu >= numVisible, -1) is var absent and >= 0)
            return $"there is no GPU {absent}: {Visible(numVisible)}";
        if (chosen.GroupBy(gpu => gpu).FirstOrDefault(g => g.Count() > 1) is { } twice)
            return $"names GPU {twice.Key} twice (one engine a GPU)";
        return null;
    }

    /// <summary>The GPUs to run on: <paramref name="chosen"/>, or 0 to <paramref name="numVisible"/> − 1 when null. Check <see cref="Problem"/> first.</summary>
    public static IReadOnlyList<int> Resolve(IReadOnlyList<int>? chosen, int numVisible) =>
        Problem(chosen, numVisible) is { } problem ? throw new ArgumentException(problem, nameof(chosen)) : chosen ?? [.. Enumerable.Range(0, numVisible)];

    /// <summary>The CUDA GPUs this process sees (<c>cudaGetDeviceCount</c>); refused as <c>--device cuda</c> is where the CUDA runtime is missing.</summary>
    public static int NumVisible()
    {
        try
        {
            return CudaRuntime.DeviceCount();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            throw new NotSupportedException(
                "the CUDA runtime (libcudart.so.13) could not be loaded: --device cuda needs a CUDA GPU and CUDA 13's runtime on the library path, as the worker image src/VicunaBatch.Worker/Dockerfile has it", e);
        }
    }

    private static string Visible(int numVisible) => numVisible switch
    {
        1 => "this machine has GPU 0",
        2 => "this machine has GPUs 0 and 1",
        _ => $"this machine has GPUs 0 to {numVisible - 1}",
    };
}

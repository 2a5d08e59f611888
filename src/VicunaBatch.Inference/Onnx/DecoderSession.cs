using Microsoft.ML.OnnxRuntime;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;

namespace VicunaBatch.Inference.Onnx;

/// <summary>The decoder's <see cref="InferenceSession"/>, the same for both attention variants (<see cref="GqaRunner"/>, <see cref="PagedRunner"/>).</summary>
internal static class DecoderSession
{
    /// <summary>
    /// The optional output model-export writes in both variants: <c>ArgMax(logits, last axis)</c>, int64 — <c>[batch,
    /// sequence]</c> in variant A, <c>[batch]</c> in variant B. The runners bind it when present and then read logits rows
    /// only for requests that sample.
    /// </summary>
    public const string GreedyIdsOutput = "greedy_ids";

    /// <summary>
    /// The decoder's session: from the graph's file (ONNX Runtime reads or maps its external data beside it), or, for a
    /// package in memory, from the graph's bytes with its external data taken in place from the package's buffers
    /// (<see cref="ExternalDataInMemory"/>), which must outlive the session.
    /// </summary>
    /// <param name="cudaGraphs">CUDA only: ONNX Runtime's <c>enable_cuda_graph</c>; every run must then name its graph
    /// in <c>gpu_graph_id</c> (-1: not captured), and a captured one must see the same shapes and addresses again.</param>
    /// <param name="gpu">CUDA only: the GPU the session runs on (the provider's <c>device_id</c>).</param>
    public static InferenceSession Open(ModelPackage package, int numThreads, ExecutionDevice device, int gpu = 0, bool cudaGraphs = false)
    {
        using var options = Options(numThreads, device, gpu, cudaGraphs);
        try
        {
            if (package.Files.PathOf(package.DecoderFileName) is { } path) return new InferenceSession(path, options);
            // in memory: the graph from its bytes, every other buffer offered as the external data files it may name
            var external = package.Files.Buffers.Where(file => file.Key != package.DecoderFileName).ToList();
            ExternalDataInMemory.Add(options, external);
            return new InferenceSession(package.Files.ReadAllBytes(package.DecoderFileName), options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelPackageException($"ONNX Runtime could not load {package.DecoderLocation}: {e.Message}", e);
        }
    }

    /// <summary>A graph of the engine's own (<see cref="GraphSampler"/>'s), with the decoder's provider and options, on the decoder's GPU.</summary>
    public static InferenceSession Open(byte[] model, string name, int numThreads, ExecutionDevice device, int gpu)
    {
        using var options = Options(numThreads, device, gpu);
        try
        {
            return new InferenceSession(model, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidOperationException($"ONNX Runtime could not load the engine's {name}: {e.Message}", e);
        }
    }

    private static SessionOptions Options(int numThreads, ExecutionDevice device, int gpu, bool cudaGraphs = false)
    {
        OnnxRuntimeTelemetry.EnsureDisabled();
        var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = numThreads,
        };
        if (device == ExecutionDevice.Cuda)
        {
            try
            {
                AppendCuda(options, gpu, cudaGraphs);
            }
            catch
            {
                options.Dispose();
                throw;
            }
        }
        return options;
    }

    /// <summary>A graph input or output the contract names, missing from the session: the package does not match its config.</summary>
    public static void Require(InferenceSession session, ModelPackage package, IEnumerable<string> inputNames, IEnumerable<string> outputNames)
    {
        var inputs = session.InputMetadata;
        var outputs = session.OutputMetadata;
        foreach (var name in inputNames)
        {
            if (!inputs.ContainsKey(name))
            {
                throw new ModelPackageException($"{package.DecoderLocation}: graph has no input '{name}' (inputs: {string.Join(", ", inputs.Keys)})");
            }
        }
        foreach (var name in outputNames)
        {
            if (!outputs.ContainsKey(name))
            {
                throw new ModelPackageException($"{package.DecoderLocation}: graph has no output '{name}' (outputs: {string.Join(", ", outputs.Keys)})");
            }
        }
    }

    /// <summary>
    /// A graph input the engine does not feed: ONNX Runtime would refuse every call without it. Named with what writes it
    /// where known (ONNX Runtime GenAI's model builder: <c>position_ids</c> not named in the config, <c>inputs_embeds</c>,
    /// <c>block_table_windowed</c> for sliding-window layers).
    /// </summary>
    public static void RequireNoOtherInputs(InferenceSession session, ModelPackage package, IReadOnlyCollection<string> fed)
    {
        var other = session.InputMetadata.Keys.Where(name => !fed.Contains(name)).ToList();
        if (other.Count == 0) return;
        var hints = other.Select(name => name switch
        {
            "position_ids" => "position_ids (rotary outside the attention node: name it in model.decoder.inputs.position_ids)",
            "inputs_embeds" => "inputs_embeds (embeddings computed outside the graph, as for multimodal models: not supported)",
            "block_table_windowed" => "block_table_windowed (sliding-window attention layers: not supported)",
            _ => name,
        });
        throw new ModelPackageException(
            $"{package.DecoderLocation}: the graph needs inputs the engine does not feed: {string.Join("; ", hints)}");
    }

    public static string Name(string pattern, int layer) => pattern.Replace("%d", layer.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>
    /// CUDA provider on GPU <paramref name="gpu"/>, capturing CUDA graphs when asked. The arena grows by what is asked (not to the next power of two) so
    /// that 26 GB of fp16 weights plus a KV cache sized close to the card's memory leave no half-empty regions.
    /// </summary>
    private static void AppendCuda(SessionOptions options, int gpu, bool cudaGraphs)
    {
        try
        {
            using var cuda = new OrtCUDAProviderOptions();
            var settings = new Dictionary<string, string>
            {
                ["device_id"] = gpu.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["arena_extend_strategy"] = "kSameAsRequested",
            };
            if (cudaGraphs) settings["enable_cuda_graph"] = "1";
            cuda.UpdateOptions(settings);
            options.AppendExecutionProvider_CUDA(cuda);
        }
        catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
        {
            throw new NotSupportedException(
                $"ONNX Runtime's CUDA execution provider is not available ({e.Message}); --device cuda needs a CUDA GPU and ONNX Runtime GPU's native libraries (Microsoft.ML.OnnxRuntime.Gpu.Linux 1.31.0 with CUDA 13 and cuDNN 9) on the library path, as the worker image src/VicunaBatch.Worker/Dockerfile has them", e);
        }
    }
}

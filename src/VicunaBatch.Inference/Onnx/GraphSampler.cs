using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// Draws sampled tokens with <c>sampler.onnx</c> (written by <c>model-export/sampler_graph.py</c>, embedded in this
/// assembly) over a decoder call's logits where they are: on CUDA they stay in device memory and only the token ids
/// come down. It computes <see cref="Sampler"/>'s definition but top-k (<see cref="SamplingParams.CutsTopK"/>), so a seeded request draws
/// the same tokens either way, short of the two sides' exp and sums rounding differently at a boundary.
/// </summary>
internal sealed class GraphSampler : IDisposable
{
    public const string ResourceName = "VicunaBatch.Inference.Onnx.sampler.onnx";

    private static readonly string[] InputNames = ["logits", "row_index", "inv_temperature", "top_p", "uniform"];
    private static readonly string[] OutputNames = ["token_ids"];

    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly int _maxRows;
    private readonly NativeBuffer _rowIndex, _inverseTemperature, _topP, _uniform, _tokens;

    /// <param name="maxRows">Most rows one call samples.</param>
    /// <param name="pinned">Page-locked host buffers (the CUDA provider copies them at full bus speed).</param>
    /// <param name="gpu">CUDA only: the decoder's GPU.</param>
    public GraphSampler(ExecutionDevice device, int maxRows, bool pinned, int gpu = 0)
    {
        _maxRows = maxRows;
        using var owned = new DisposeOnFailure();
        owned.Own(_runOptions);
        // on the CPU one thread: the rows are few and the decoder's threads have the cores
        _session = owned.Own(DecoderSession.Open(ReadGraph(), "sampler.onnx", numThreads: device == ExecutionDevice.Cpu ? 1 : 0, device, gpu));
        _rowIndex = owned.Own(new NativeBuffer(8L * maxRows, pinned));
        _inverseTemperature = owned.Own(new NativeBuffer(4L * maxRows, pinned));
        _topP = owned.Own(new NativeBuffer(4L * maxRows, pinned));
        _uniform = owned.Own(new NativeBuffer(4L * maxRows, pinned));
        _tokens = owned.Own(new NativeBuffer(8L * maxRows, pinned));
        owned.Keep();
    }

    public static byte[] ReadGraph() => ReadEmbedded(ResourceName);

    /// <summary>The bytes of one of this assembly's embedded graphs (<c>sampler.onnx</c>, <c>logprobs.onnx</c>).</summary>
    public static byte[] ReadEmbedded(string resourceName)
    {
        using var stream = typeof(GraphSampler).Assembly.GetManifestResourceStream(resourceName)
            ?? throw new InvalidOperationException($"{resourceName} is not embedded in {typeof(GraphSampler).Assembly.GetName().Name}");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>
    /// One token per pick from the logits at <paramref name="logits"/> (float32 <c>[numRows, vocab]</c> in
    /// <paramref name="memory"/>, complete): picks[i] samples row <c>rows[i]</c> and its token goes to tokens[i].
    /// </summary>
    public void Run(OrtMemoryInfo memory, IntPtr logits, long numRows, int vocab,
        ReadOnlySpan<int> rows, ReadOnlySpan<GraphPick> picks, Span<int> tokens)
    {
        var n = rows.Length;
        if (n == 0) return;
        if (n > _maxRows) throw new ArgumentOutOfRangeException(nameof(rows), n, $"at most {_maxRows} rows per call");
        var rowIndex = _rowIndex.AsSpan<long>(n);
        var inverseTemperature = _inverseTemperature.AsSpan<float>(n);
        var topP = _topP.AsSpan<float>(n);
        var uniform = _uniform.AsSpan<float>(n);
        for (var i = 0; i < n; i++)
        {
            var sampling = picks[i].Sampling;
            if (sampling.IsGreedy || sampling.CutsTopK(vocab))
            {
                throw new ArgumentException($"pick {i}: the graph samples at a temperature above 0 without top-k ({sampling})", nameof(picks));
            }
            rowIndex[i] = rows[i];
            inverseTemperature[i] = 1f / sampling.Temperature;
            topP[i] = sampling.TopP;
            uniform[i] = picks[i].Uniform;
        }

        var host = OrtMemoryInfo.DefaultInstance;
        using var logitsValue = OrtValue.CreateTensorValueWithData(memory, TensorElementType.Float, [numRows, vocab], logits, 4L * numRows * vocab);
        using var rowIndexValue = OrtValue.CreateTensorValueWithData(host, TensorElementType.Int64, [n], _rowIndex.At(0), 8L * n);
        using var inverseTemperatureValue = OrtValue.CreateTensorValueWithData(host, TensorElementType.Float, [n], _inverseTemperature.At(0), 4L * n);
        using var topPValue = OrtValue.CreateTensorValueWithData(host, TensorElementType.Float, [n], _topP.At(0), 4L * n);
        using var uniformValue = OrtValue.CreateTensorValueWithData(host, TensorElementType.Float, [n], _uniform.At(0), 4L * n);
        using var tokensValue = OrtValue.CreateTensorValueWithData(host, TensorElementType.Int64, [n], _tokens.At(0), 8L * n);
        _session.Run(_runOptions, InputNames,
            [logitsValue, rowIndexValue, inverseTemperatureValue, topPValue, uniformValue],
            OutputNames, [tokensValue]);
        var ids = _tokens.AsSpan<long>(n);
        for (var i = 0; i < n; i++)
        {
            tokens[i] = (int)ids[i];
        }
    }

    public void Dispose()
    {
        _session.Dispose();
        _runOptions.Dispose();
        _rowIndex.Dispose();
        _inverseTemperature.Dispose();
        _topP.Dispose();
        _uniform.Dispose();
        _tokens.Dispose();
    }
}

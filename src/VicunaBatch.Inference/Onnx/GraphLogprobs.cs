using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// Takes picks' log probabilities with <c>logprobs.onnx</c> (written by <c>model-export/logprobs_graph.py</c>, embedded
/// in this assembly) over a decoder call's logits where they are: on CUDA they stay in device memory and only
/// n × (1 + 2 × <see cref="TokenLogprobs.MaxTop"/>) numbers come down. It computes <see cref="TokenLogprobs.Of"/>'s
/// definition (log-softmax of the raw logits; equal logits rank by the lower id), to float rounding.
/// </summary>
internal sealed class GraphLogprobs : IDisposable
{
    public const string ResourceName = "VicunaBatch.Inference.Onnx.logprobs.onnx";

    private static readonly string[] InputNames = ["logits", "row_index", "token_ids"];
    private static readonly string[] OutputNames = ["chosen_logprobs", "top_ids", "top_logprobs"];

    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly int _maxRows;
    private readonly NativeBuffer _rowIndex, _tokenIds;    // int64 [maxRows]
    private readonly NativeBuffer _chosen;                 // float32 [maxRows]
    private readonly NativeBuffer _topIds, _topLogprobs;   // int64, float32 [maxRows, MaxTop]

    /// <param name="maxRows">Most picks one call takes.</param>
    /// <param name="pinned">Page-locked host buffers (the CUDA provider copies them at full bus speed).</param>
    /// <param name="gpu">CUDA only: the decoder's GPU.</param>
    public GraphLogprobs(ExecutionDevice device, int maxRows, bool pinned, int gpu = 0)
    {
        _maxRows = maxRows;
        using var owned = new DisposeOnFailure();
        owned.Own(_runOptions);
        // on the CPU one thread, as GraphSampler: the rows are few and the decoder's threads have the cores
        _session = owned.Own(DecoderSession.Open(ReadGraph(), "logprobs.onnx", numThreads: device == ExecutionDevice.Cpu ? 1 : 0, device, gpu));
        _rowIndex = owned.Own(new NativeBuffer(8L * maxRows, pinned));
        _tokenIds = owned.Own(new NativeBuffer(8L * maxRows, pinned));
        _chosen = owned.Own(new NativeBuffer(4L * maxRows, pinned));
        _topIds = owned.Own(new NativeBuffer(8L * maxRows * TokenLogprobs.MaxTop, pinned));
        _topLogprobs = owned.Own(new NativeBuffer(4L * maxRows * TokenLogprobs.MaxTop, pinned));
        owned.Keep();
    }

    public static byte[] ReadGraph() => GraphSampler.ReadEmbedded(ResourceName);

    /// <summary>
    /// The log probabilities of pick i — token <c>tokens[i]</c> of row <c>rows[i]</c> of the logits at
    /// <paramref name="logits"/> (float32 <c>[numRows, vocab]</c> in <paramref name="memory"/>, complete) — with the
    /// min(<see cref="TokenLogprobs.MaxTop"/>, vocab) most likely tokens of the row, into <c>logprobs[i]</c>.
    /// </summary>
    public void Run(OrtMemoryInfo memory, IntPtr logits, long numRows, int vocab,
        ReadOnlySpan<int> rows, ReadOnlySpan<int> tokens, Span<TokenLogprobs> logprobs)
    {
        var n = rows.Length;
        if (n == 0) return;
        if (n > _maxRows) throw new ArgumentOutOfRangeException(nameof(rows), n, $"at most {_maxRows} rows per call");
        var rowIndex = _rowIndex.AsSpan<long>(n);
        var tokenIds = _tokenIds.AsSpan<long>(n);
        for (var i = 0; i < n; i++)
        {
            if ((uint)tokens[i] >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(tokens), tokens[i], $"pick {i}: a token of [0, {vocab})");
            rowIndex[i] = rows[i];
            tokenIds[i] = tokens[i];
        }
        var top = Math.Min(TokenLogprobs.MaxTop, vocab);

        var host = OrtMemoryInfo.DefaultInstance;
        using var logitsValue = OrtValue.CreateTensorValueWithData(memory, TensorElementType.Float, [numRows, vocab], logits, 4L * numRows * vocab);
        using var rowIndexValue = OrtValue.CreateTensorValueWithData(host, TensorElementType.Int64, [n], _rowIndex.At(0), 8L * n);
        using var tokenIdsValue = OrtValue.CreateTensorValueWithData(host, TensorElementType.Int64, [n], _tokenIds.At(0), 8L * n);
        using var chosenValue = OrtValue.CreateTensorValueWithData(host, TensorElementType.Float, [n], _chosen.At(0), 4L * n);
        using var topIdsValue = OrtValue.CreateTensorValueWithData(host, TensorElementType.Int64, [n, top], _topIds.At(0), 8L * n * top);
        using var topLogprobsValue = OrtValue.CreateTensorValueWithData(host, TensorElementType.Float, [n, top], _topLogprobs.At(0), 4L * n * top);
        _session.Run(_runOptions, InputNames, [logitsValue, rowIndexValue, tokenIdsValue],
            OutputNames, [chosenValue, topIdsValue, topLogprobsValue]);

        var chosen = _chosen.AsSpan<float>(n);
        var topIds = _topIds.AsSpan<long>(n * top);
        var topLogprobs = _topLogprobs.AsSpan<float>(n * top);
        for (var i = 0; i < n; i++)
        {
            var entries = new LogprobEntry[top];
            for (var k = 0; k < top; k++)
            {
                entries[k] = new LogprobEntry((int)topIds[i * top + k], topLogprobs[i * top + k]);
            }
            logprobs[i] = new TokenLogprobs(new LogprobEntry(tokens[i], chosen[i]), entries);
        }
    }

    public void Dispose()
    {
        _session.Dispose();
        _runOptions.Dispose();
        _rowIndex.Dispose();
        _tokenIds.Dispose();
        _chosen.Dispose();
        _topIds.Dispose();
        _topLogprobs.Dispose();
    }
}

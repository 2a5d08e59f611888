using System.Collections.Immutable;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// A runner's <c>logits</c> and <c>greedy_ids</c> outputs (<see cref="DecoderSession.GreedyIdsOutput"/>) and the one way
/// their rows reach the engine, for both attention variants. The graph writes logits into a host buffer — or, on
/// CUDA when it also writes <c>greedy_ids</c>, into device memory: then only the ids come down, plus the rows of requests
/// that sample or ask for logits (<see cref="StepPlan.GreedyOnly"/> names the others). Per step:
/// <see cref="BeginStep"/>, after each call <see cref="Collect"/> for every row a request samples from, then
/// <see cref="EndStep"/>.
/// </summary>
internal sealed class StepLogits : IDisposable
{
    private readonly KvMemory _memory;
    private readonly int _vocabSize;
    private readonly NativeBuffer _host;        // float32 [maxRows, vocab]; with _device, only the rows copied down
    private readonly NativeBuffer? _greedyIds;  // int64 [maxRows]: the graph's argmax, when it has greedy_ids
    private readonly KvAllocation? _device;     // float32 [maxRows, vocab] on the GPU, when it has greedy_ids on CUDA
    private float[] _sampled = [];
    private ImmutableArray<long>.Builder _ids = ImmutableArray.CreateBuilder<long>();
    private ImmutableArray<int>.Builder? _greedy;

    /// <param name="maxRows">Most output rows of one call (rows × tokens for variant A, requests for variant B).</param>
    /// <param name="pinned">Page-locked host buffers (the CUDA provider copies to and from them at full bus speed).</param>
    /// <param name="onDevice">The session runs on CUDA and <paramref name="memory"/> is device memory.</param>
    public StepLogits(InferenceSession session, KvMemory memory, long maxRows, int vocabSize, bool pinned, bool onDevice)
    {
        _memory = memory;
        _vocabSize = vocabSize;
        _host = new NativeBuffer(4L * maxRows * vocabSize, pinned);
        if (session.OutputMetadata.ContainsKey(DecoderSession.GreedyIdsOutput))
        {
            _greedyIds = new NativeBuffer(8L * maxRows, pinned);
            if (onDevice)
            {
                _device = memory.Allocate(4L * maxRows * vocabSize);
            }
        }
    }

    /// <summary>The graph writes <c>greedy_ids</c>: greedy requests take its argmax, no logits row is read for them.</summary>
    public bool HasGreedyIds => _greedyIds is not null;

    /// <summary>
    /// Binds <paramref name="logitsName"/> with <paramref name="shape"/> (last dimension the vocabulary) and, when the
    /// graph has it, <c>greedy_ids</c> with the shape less its last dimension; the views go to <paramref name="views"/>,
    /// which the caller disposes after the call.
    /// </summary>
    public void Bind(OrtIoBinding binding, string logitsName, long[] shape, List<OrtValue> views)
    {
        var numRows = shape[..^1].Aggregate(1L, (a, b) => a * b);
        var logits = _device is null
            ? OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float, shape, _host.At(0), 4L * numRows * _vocabSize)
            : OrtValue.CreateTensorValueWithData(_memory.MemoryInfo, TensorElementType.Float, shape, _device.Pointer, 4L * numRows * _vocabSize);
        views.Add(logits);
        binding.BindOutput(logitsName, logits);
        if (_greedyIds is not null)
        {
            var greedy = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Int64, shape[..^1], _greedyIds.At(0), 8L * numRows);
            views.Add(greedy);
            binding.BindOutput(DecoderSession.GreedyIdsOutput, greedy);
        }
    }

    /// <summary>After the call: device-resident logits are complete before a row is copied from them.</summary>
    public void AfterRun(OrtIoBinding binding)
    {
        if (_device is not null) binding.SynchronizeBoundOutputs();
    }

    public void BeginStep(int numSampled)
    {
        if (_sampled.Length < numSampled * _vocabSize)
        {
            _sampled = new float[numSampled * _vocabSize];
        }
        _ids = ImmutableArray.CreateBuilder<long>(numSampled);
        _greedy = _greedyIds is null ? null : ImmutableArray.CreateBuilder<int>(numSampled);
    }

    /// <summary>
    /// Output row <paramref name="row"/> of the last call (flattened over all but the vocabulary) is the next token of
    /// <paramref name="sequenceId"/>: its argmax id, and — unless the engine takes the argmax — its logits row, copied
    /// down from the device when the logits live there. Read before the next call overwrites them.
    /// </summary>
    public void Collect(StepPlan plan, long sequenceId, int row)
    {
        if (_greedy is not null)
        {
            _greedy.Add((int)_greedyIds!.AsSpan<long>(row + 1)[row]);
            if (plan.GreedyOnly.Contains(sequenceId))
            {
                _ids.Add(sequenceId);
                return;
            }
        }
        var rowBytes = 4L * _vocabSize;
        if (_device is not null)
        {
            CudaRuntime.CopyToHost(_host.At(row * rowBytes), _device.At(row * rowBytes), rowBytes);
        }
        var at = row * _vocabSize;
        _host.AsSpan<float>(at + _vocabSize)[at..].CopyTo(_sampled.AsSpan(_ids.Count * _vocabSize));
        _ids.Add(sequenceId);
    }

    public StepOutputs EndStep() =>
        new(_ids.MoveToImmutable(), _sampled, _vocabSize) { GreedyIds = _greedy?.MoveToImmutable() ?? default };

    /// <summary>Frees the device buffer into the session's allocator: call while the session and its memory live.</summary>
    public void Dispose()
    {
        _device?.Dispose();
        _host.Dispose();
        _greedyIds?.Dispose();
    }
}

using System.Collections.Immutable;
using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// A runner's <c>logits</c> and <c>greedy_ids</c> outputs (<see cref="DecoderSession.GreedyIdsOutput"/>) and the one way
/// a call's rows become the engine's next tokens, for both attention variants. The graph writes logits into a host
/// buffer — or, on CUDA when it also writes <c>greedy_ids</c>, into device memory: then greedy requests take the
/// graph's argmax, sampled ones are drawn there by <see cref="GraphSampler"/> (<see cref="SamplingSite"/>), the log
/// probabilities of those that ask for them are taken there by <see cref="GraphLogprobs"/>, and only ids and log
/// probabilities come down; a row is copied down only for a request that asks for its logits (or samples on the host).
/// <see cref="StepPlan.GraphPicks"/> names the requests whose token is picked in a graph. Per step:
/// <see cref="BeginStep"/>, per call <see cref="Bind"/> and <see cref="AfterRun"/>, then <see cref="Collect"/> for every
/// row a request takes its next token from, and after the step's last call <see cref="EndStep"/>.
/// </summary>
internal sealed class StepLogits : IDisposable
{
    private readonly KvMemory _memory;
    private readonly int _vocabSize;
    private readonly NativeBuffer _host;        // float32 [maxRows, vocab]; with _device, only the rows copied down
    private readonly NativeBuffer? _greedyIds;  // int64 [maxRows]: the graph's argmax, when it has greedy_ids
    private readonly KvAllocation? _device;     // float32 [maxRows, vocab] on the GPU, when it has greedy_ids on CUDA
    private readonly KvAllocation? _deviceGreedyIds; // int64 [maxRows] on the GPU beside _device, copied down after each call
    private readonly GraphSampler? _sampler;
    private readonly GraphLogprobs? _logprobs;  // with _sampler
    private float[] _sampled = [];
    private ImmutableArray<long>.Builder _ids = ImmutableArray.CreateBuilder<long>();
    private int[] _tokens = [];                 // per output row: the token a graph picked, or -1
    private long _callRows;                     // output rows of the last call
    private readonly List<(int Output, int Row, GraphPick Pick)> _toSample = []; // the last call's rows for _sampler
    private readonly List<(int Output, int Row)> _toLogprob = [];                // ... and for _logprobs, after _sampler
    private TokenLogprobs?[] _rowLogprobs = []; // per output row: what _logprobs took, or null
    private int _numLogprobRows;                // rows of _rowLogprobs set this step
    private int _samplings;                     // _sampler runs this step, and their time
    private long _samplingTicks;
    private int _logprobRuns;                   // _logprobs runs this step, and their time
    private long _logprobTicks;
    private int _rowsRead;                      // logits rows copied to _sampled this step

    /// <param name="maxRows">Most output rows of one call (rows × tokens for variant A, requests for variant B).</param>
    /// <param name="pinned">Page-locked host buffers (the CUDA provider copies to and from them at full bus speed).</param>
    /// <param name="device">Where the session runs; on CUDA <paramref name="memory"/> is device memory.</param>
    /// <param name="gpu">CUDA only: the session's GPU, where the sampler and log-probability graphs run too.</param>
    public StepLogits(InferenceSession session, KvMemory memory, long maxRows, int vocabSize, bool pinned, ExecutionDevice device, int gpu, SamplingSite sampling)
    {
        _memory = memory;
        _vocabSize = vocabSize;
        using var owned = new DisposeOnFailure();
        _host = owned.Own(new NativeBuffer(4L * maxRows * vocabSize, pinned));
        if (session.OutputMetadata.ContainsKey(DecoderSession.GreedyIdsOutput))
        {
            _greedyIds = owned.Own(new NativeBuffer(8L * maxRows, pinned));
            if (device == ExecutionDevice.Cuda)
            {
                _device = owned.Own(memory.Allocate(4L * maxRows * vocabSize));
                // the graph's outputs all stay in device memory (a CUDA graph replay copies nothing across devices)
                _deviceGreedyIds = owned.Own(memory.Allocate(8L * maxRows));
            }
        }
        if (sampling == SamplingSite.Graph || (sampling == SamplingSite.Auto && _device is not null))
        {
            _sampler = owned.Own(new GraphSampler(device, (int)Math.Min(maxRows, int.MaxValue), pinned, gpu));
            _logprobs = owned.Own(new GraphLogprobs(device, (int)Math.Min(maxRows, int.MaxValue), pinned, gpu));
        }
        owned.Keep();
    }

    /// <summary>The graph writes <c>greedy_ids</c>: greedy requests take its argmax, no logits row is read for them.</summary>
    public bool HasGreedyIds => _greedyIds is not null;

    /// <summary>Sampled requests are drawn by <see cref="GraphSampler"/>, no logits row is read for them.</summary>
    public bool SamplesInGraph => _sampler is not null;

    /// <summary>Picks' log probabilities are taken by <see cref="GraphLogprobs"/> (<see cref="GraphPick.TakesLogprobs"/>),
    /// no logits row is read for them.</summary>
    public bool TakesLogprobsInGraph => _logprobs is not null;

    /// <summary>
    /// Binds <paramref name="logitsName"/> with <paramref name="shape"/> (last dimension the vocabulary) and, when the
    /// graph has it, <c>greedy_ids</c> with the shape less its last dimension; the views go to <paramref name="views"/>,
    /// which the caller disposes after the call. The previous call's rows must have been collected.
    /// </summary>
    public void Bind(OrtIoBinding binding, string logitsName, long[] shape, List<OrtValue> views)
    {
        PickCollected();
        var numRows = 1L;
        for (var i = 0; i < shape.Length - 1; i++) numRows *= shape[i];
        _callRows = numRows;
        var logits = OrtValue.CreateTensorValueWithData(LogitsMemory, TensorElementType.Float, shape, LogitsAddress, 4L * numRows * _vocabSize);
        views.Add(logits);
        binding.BindOutput(logitsName, logits);
        if (_greedyIds is not null)
        {
            var greedy = _deviceGreedyIds is null
                ? OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Int64, shape[..^1], _greedyIds.At(0), 8L * numRows)
                : OrtValue.CreateTensorValueWithData(_memory.MemoryInfo, TensorElementType.Int64, shape[..^1], _deviceGreedyIds.Pointer, 8L * numRows);
            views.Add(greedy);
            binding.BindOutput(DecoderSession.GreedyIdsOutput, greedy);
        }
    }

    private OrtMemoryInfo LogitsMemory => _device is null ? OrtMemoryInfo.DefaultInstance : _memory.MemoryInfo;

    private IntPtr LogitsAddress => _device?.Pointer ?? _host.At(0);

    /// <summary>After the call: device-resident logits are complete before a row is read from them, and the greedy ids are down.</summary>
    public void AfterRun(OrtIoBinding binding)
    {
        if (_device is null) return;
        binding.SynchronizeBoundOutputs();
        if (_deviceGreedyIds is not null) CudaRuntime.CopyToHost(_greedyIds!.At(0), _deviceGreedyIds.Pointer, 8L * _callRows);
    }

    public void BeginStep(int numRows)
    {
        if (_sampled.Length < numRows * _vocabSize)
        {
            _sampled = new float[numRows * _vocabSize];
        }
        if (_tokens.Length < numRows)
        {
            _tokens = new int[numRows];
            _rowLogprobs = new TokenLogprobs?[numRows];
        }
        _ids = ImmutableArray.CreateBuilder<long>(numRows);
        _toSample.Clear();
        _toLogprob.Clear();
        _numLogprobRows = 0;
        _samplings = 0;
        _samplingTicks = 0;
        _logprobRuns = 0;
        _logprobTicks = 0;
        _rowsRead = 0;
    }

    /// <summary>
    /// Output row <paramref name="row"/> of the last call (flattened over all but the vocabulary) is the next token of
    /// <paramref name="sequenceId"/>: picked in a graph when the plan says so (the argmax now, a sampled one with the
    /// call's other sampled rows before the next call or <see cref="EndStep"/>, and then its log probabilities when it
    /// takes them), else its logits row is copied — down from the device when the logits live there — for the engine
    /// to sample from.
    /// </summary>
    public void Collect(StepPlan plan, long sequenceId, int row)
    {
        var output = _ids.Count;
        _ids.Add(sequenceId);
        _tokens[output] = -1;
        _rowLogprobs[output] = null;
        if (plan.GraphPicks.TryGetValue(sequenceId, out var pick) && (!pick.TakesLogprobs || _logprobs is not null))
        {
            if (pick.Sampling.IsGreedy && _greedyIds is not null)
            {
                _tokens[output] = (int)_greedyIds.AsSpan<long>(row + 1)[row];
                if (pick.TakesLogprobs) _toLogprob.Add((output, row));
                return;
            }
            if (!pick.Sampling.IsGreedy && _sampler is not null)
            {
                _toSample.Add((output, row, pick));
                if (pick.TakesLogprobs) _toLogprob.Add((output, row));
                return;
            }
        }
        _rowsRead++;
        var rowBytes = 4L * _vocabSize;
        if (_device is not null)
        {
            CudaRuntime.CopyToHost(_host.At(row * rowBytes), _device.At(row * rowBytes), rowBytes);
        }
        var at = row * _vocabSize;
        _host.AsSpan<float>(at + _vocabSize)[at..].CopyTo(_sampled.AsSpan(output * _vocabSize));
    }

    /// <summary>The last call's picks, before its logits are overwritten: its sampled rows drawn in one
    /// <see cref="GraphSampler"/> run, then the log probabilities of those that take them in one <see cref="GraphLogprobs"/> run.</summary>
    private void PickCollected()
    {
        SampleCollected();
        TakeCollectedLogprobs();
    }

    private void SampleCollected()
    {
        if (_toSample.Count == 0) return;
        var n = _toSample.Count;
        var rows = new int[n];
        var picks = new GraphPick[n];
        for (var i = 0; i < n; i++)
        {
            rows[i] = _toSample[i].Row;
            picks[i] = _toSample[i].Pick;
        }
        var tokens = new int[n];
        var started = Stopwatch.GetTimestamp();
        _sampler!.Run(LogitsMemory, LogitsAddress, _callRows, _vocabSize, rows, picks, tokens);
        _samplingTicks += Stopwatch.GetTimestamp() - started;
        _samplings++;
        for (var i = 0; i < n; i++)
        {
            _tokens[_toSample[i].Output] = tokens[i];
        }
        _toSample.Clear();
    }

    private void TakeCollectedLogprobs()
    {
        if (_toLogprob.Count == 0) return;
        var n = _toLogprob.Count;
        var rows = new int[n];
        var tokens = new int[n];
        for (var i = 0; i < n; i++)
        {
            rows[i] = _toLogprob[i].Row;
            tokens[i] = _tokens[_toLogprob[i].Output];
        }
        var logprobs = new TokenLogprobs[n];
        var started = Stopwatch.GetTimestamp();
        _logprobs!.Run(LogitsMemory, LogitsAddress, _callRows, _vocabSize, rows, tokens, logprobs);
        _logprobTicks += Stopwatch.GetTimestamp() - started;
        _logprobRuns++;
        for (var i = 0; i < n; i++)
        {
            _rowLogprobs[_toLogprob[i].Output] = logprobs[i];
        }
        _numLogprobRows += n;
        _toLogprob.Clear();
    }

    public StepOutputs EndStep()
    {
        PickCollected();
        var numRows = _ids.Count;
        return new StepOutputs(_ids.MoveToImmutable(), _sampled, _vocabSize)
        {
            Tokens = ImmutableArray.Create(_tokens, 0, numRows),
            Logprobs = _numLogprobRows == 0 ? default : ImmutableArray.Create(_rowLogprobs, 0, numRows),
            NumLogitRowsRead = _rowsRead,
            GraphSamplings = _samplings, GraphSamplingTime = Stopwatch.GetElapsedTime(0, _samplingTicks),
            GraphLogprobRuns = _logprobRuns, GraphLogprobTime = Stopwatch.GetElapsedTime(0, _logprobTicks),
        };
    }

    /// <summary>Frees the device buffer into the session's allocator: call while the session and its memory live.</summary>
    public void Dispose()
    {
        _sampler?.Dispose();
        _logprobs?.Dispose();
        _device?.Dispose();
        _deviceGreedyIds?.Dispose();
        _host.Dispose();
        _greedyIds?.Dispose();
    }
}

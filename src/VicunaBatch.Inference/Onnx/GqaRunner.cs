using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// Runs a step plan on a GroupQueryAttention decoder (variant A, KV slots) with IOBinding over shared past/present KV
/// buffers <c>[numSlots, kvHeads, maxLength, headSize]</c> per layer. One <c>Run</c> holds every decode of the step:
/// a rectangular call over slots [0, n), row r = slot r, padded with filler rows (<see cref="SlotRows"/>); each
/// prefill chunk runs on its slot's row after the decode call (a filler row writes at the slot's next position,
/// which the chunk then overwrites), alone, or with brand-new prompts of adjacent slots (<see cref="PrefillCalls"/>).
/// On <see cref="ExecutionDevice.Cuda"/> the session runs on the CUDA provider and the KV buffers live in device memory
/// (<see cref="CudaKvMemory"/>); input_ids and attention_mask stay host tensors (ONNX Runtime copies them up, a few
/// KB). With the graph's <c>greedy_ids</c> output (<see cref="DecoderSession.GreedyIdsOutput"/>, model-export writes
/// it) the logits stay on the device: only the argmax ids come down, plus the rows of sampled requests. A package
/// without it has its full <c>[rows, tokens, vocab]</c> float32 logits copied down to a page-locked buffer every call.
/// On the CPU the logits are host memory either way; <c>greedy_ids</c> still spares the host argmax and the row copies.
/// With CUDA graphs (<see cref="EngineOptions.CudaGraphs"/>) decode calls take a few fixed shapes and replay as graphs
/// (<see cref="FixedDecodeShapes"/>); prefill calls are never captured.
/// </summary>
internal sealed class GqaRunner : IStepRunner
{
    private readonly InferenceSession _session;
    private readonly KvMemory _kvMemory;
    private readonly KvBuffers _kv;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _runOptions = new();
    private readonly NativeBuffer _inputIds;      // int64, up to max(numSlots, maxChunk) tokens
    private readonly NativeBuffer _attentionMask; // int64, up to numSlots * maxLength
    private readonly NativeBuffer? _positionIds;  // int64, the shape of input_ids; only for a graph with position_ids
    private readonly StepLogits _logits;          // [maxRows, vocab] and greedy ids, maxRows = max(numSlots, maxChunk)
    private readonly SlotRow[] _decodeRows;       // [numSlots]: this step's decode call, row r = slot r
    private readonly string[] _pastKeyNames, _pastValueNames, _presentKeyNames, _presentValueNames;
    private readonly string _inputIdsName, _attentionMaskName, _logitsName;
    private readonly string? _positionIdsName;
    private readonly int _maxTokensPerCall;
    private readonly FixedDecodeShapes? _fixedDecodes; // with CUDA graphs (or padDecodes): decode calls of fixed shapes
    private readonly CudaDevice? _cuda;               // on CUDA: made current first by every entry point (CudaDevice)

    /// <param name="cudaGraphs">CUDA only: decode calls captured and replayed as CUDA graphs.</param>
    /// <param name="padDecodes">Decode calls in <see cref="FixedDecodeShapes"/>' shapes without capture (what the CPU
    /// tests check of the CUDA graph path).</param>
    /// <param name="gpu">CUDA only: the GPU the session and the KV buffers are on (<see cref="EngineOptions.Gpu"/>).</param>
    public GqaRunner(ModelPackage package, int numSlots, int maxLength, int maxChunkTokens, int numThreads,
        ExecutionDevice device = ExecutionDevice.Cpu, SamplingSite sampling = SamplingSite.Auto, bool cudaGraphs = false, bool padDecodes = false, int gpu = 0)
    {
        _cuda = device == ExecutionDevice.Cuda ? new CudaDevice(gpu) : null;
        _cuda?.MakeCurrent(); // this thread's CUDA calls below (free memory, pinned buffers) are on that GPU
        if (cudaGraphs && device != ExecutionDevice.Cuda)
        {
            throw new NotSupportedException("CUDA graphs need the CUDA device");
        }
        var config = package.Config.Model;
        var decoder = config.Decoder;
        VocabSize = config.VocabSize;
        MaxLength = maxLength;
        var inputs = decoder.Inputs ?? new GenAiDecoderInputs();
        var outputs = decoder.Outputs ?? new GenAiDecoderOutputs();
        _inputIdsName = inputs.InputIds;
        _attentionMaskName = inputs.AttentionMask;
        _positionIdsName = inputs.PositionIds;
        _logitsName = outputs.Logits;
        if (_positionIdsName is not null && (cudaGraphs || padDecodes))
        {
            throw new NotSupportedException(
                $"{package.DecoderLocation}: a graph with position_ids (model.decoder.inputs.position_ids) runs without CUDA graphs " +
                "(--cuda-graphs): its decode calls' fixed shapes carry no positions");
        }
        var layers = Enumerable.Range(0, decoder.NumHiddenLayers).ToArray();
        _pastKeyNames = layers.Select(i => DecoderSession.Name(inputs.PastKeyNames, i)).ToArray();
        _pastValueNames = layers.Select(i => DecoderSession.Name(inputs.PastValueNames, i)).ToArray();
        _presentKeyNames = layers.Select(i => DecoderSession.Name(outputs.PresentKeyNames, i)).ToArray();
        _presentValueNames = layers.Select(i => DecoderSession.Name(outputs.PresentValueNames, i)).ToArray();

        using var owned = new DisposeOnFailure();
        owned.Own(_runOptions);
        _session = owned.Own(DecoderSession.Open(package, numThreads, device, gpu, cudaGraphs));
        var kvType = CheckContract(package);
        if (device == ExecutionDevice.Cuda && kvType is not (TensorElementType.Float16 or TensorElementType.BFloat16))
        {
            throw new NotSupportedException(
                $"{package.DecoderLocation}: KV cache is {kvType}; the CUDA GroupQueryAttention kernel needs a float16 or bfloat16 package (export.py --dtype float16)");
        }
        KvElementBytes = KvBuffers.ElementSize(kvType);
        _kvMemory = owned.Own<KvMemory>(device == ExecutionDevice.Cuda ? new CudaKvMemory(_session, gpu) : new HostKvMemory());
        try
        {
            var slotBytes = KvBuffers.SlotBytes(decoder.NumHiddenLayers, decoder.NumKeyValueHeads, maxLength, decoder.HeadSize, kvType);
            // as many as asked (0 on CUDA: as many as fit, at most a step's tokens), fewer when fewer fit: said by LoadedModel.SlotsNote
            numSlots = device == ExecutionDevice.Cpu
                ? HostKvMemory.FitSlots(slotBytes, numSlots, HostMemory.AvailableBytes())
                : ((CudaKvMemory)_kvMemory).FitSlots(slotBytes, numSlots == 0 ? maxChunkTokens : numSlots);
            _kv = owned.Own(new KvBuffers(_kvMemory, decoder.NumHiddenLayers, numSlots, decoder.NumKeyValueHeads, maxLength, decoder.HeadSize, kvType));
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException(
                $"could not allocate the KV cache ({numSlots} slots of {maxLength} tokens) on {device}: {e.Message}", e);
        }
        _maxTokensPerCall = Math.Max(numSlots, maxChunkTokens);
        var pinned = device == ExecutionDevice.Cuda; // copied up and down every step
        _inputIds = owned.Own(new NativeBuffer(8L * _maxTokensPerCall, pinned));
        _attentionMask = owned.Own(new NativeBuffer(8L * Math.Max(numSlots, 1) * maxLength, pinned));
        if (_positionIdsName is not null) _positionIds = owned.Own(new NativeBuffer(8L * _maxTokensPerCall, pinned));
        _logits = owned.Own(new StepLogits(_session, _kvMemory, _maxTokensPerCall, VocabSize, pinned, device, gpu, sampling));
        _binding = owned.Own(_session.CreateIoBinding());
        _decodeRows = new SlotRow[numSlots];
        if (cudaGraphs || padDecodes)
        {
            _fixedDecodes = owned.Own(new FixedDecodeShapes(_kvMemory, NumSlots, maxLength, captured: cudaGraphs));
        }
        ReplaysCudaGraphs = cudaGraphs;
        owned.Keep();
    }

    /// <summary>The package's graph has <c>greedy_ids</c>: greedy requests take the graph's argmax (no logits row read).</summary>
    public bool SelectsGreedyInGraph => _logits.HasGreedyIds;

    public bool SamplesInGraph => _logits.SamplesInGraph;

    public bool TakesLogprobsInGraph => _logits.TakesLogprobsInGraph;

    public bool ReplaysCudaGraphs { get; }

    public int VocabSize { get; }

    public int NumSlots => _kv.NumSlots;

    public int MaxLength { get; }

    public long KvCacheBytes => _kv.TotalBytes;

    public int KvElementBytes { get; }

    /// <summary>The KV cache's: GroupQueryAttention keeps it in the activations' type (CheckContract).</summary>
    public int ActivationElementBytes => KvElementBytes;

    /// <summary>ONNX Runtime calls made so far (decode calls plus prefill calls).</summary>
    internal long NumRuns { get; private set; }

    /// <summary>Decode calls take <see cref="FixedDecodeShapes"/>' shapes (CUDA graphs, or padDecodes).</summary>
    internal bool FixedDecodes => _fixedDecodes is not null;

    public bool CopiesKv => true;

    public void CopyKv(KvFork fork)
    {
        _cuda?.MakeCurrent();
        foreach (var copy in fork.Copies)
        {
            _kv.CopyTokens(copy.From, copy.To, copy.NumTokens);
        }
    }

    public StepOutputs Execute(StepPlan plan)
    {
        _cuda?.MakeCurrent(); // the engine host's thread: the copies below and in StepLogits use the current device
        _logits.BeginStep(plan.NumDecodes + plan.Prefills.Count(p => p.NeedsLogits));
        var rows = _decodeRows.AsSpan(0, SlotRows.Fill(plan, _decodeRows));
        if (!rows.IsEmpty)
        {
            RunDecode(rows);
            for (var row = 0; row < rows.Length; row++)
            {
                if (!rows[row].IsFiller) _logits.Collect(plan, rows[row].SequenceId, row);
            }
        }
        foreach (var group in PrefillCalls.Group(plan.Prefills, _maxTokensPerCall))
        {
            // one batch-1 call per chunk, or one call for brand-new prompts of adjacent slots: [B, S] right-padded
            var width = group.Count == 1 ? group[0].TokenIds.Length : group.Max(c => c.TokenIds.Length);
            if (group.Count == 1) RunPrefill(group[0]);
            else RunFirstPrompts(group, width);
            for (var b = 0; b < group.Count; b++)
            {
                if (group[b].NeedsLogits) _logits.Collect(plan, group[b].SequenceId, b * width + group[b].TokenIds.Length - 1);
            }
        }
        return _logits.EndStep();
    }

    /// <summary>input_ids [B, S] and attention_mask [B, S], row b = the prompt then zeros; position_ids [B, S] = i (0 in the
    /// padding); slots from group[0]'s on, in order.</summary>
    private void RunFirstPrompts(List<PrefillChunk> group, int width)
    {
        var ids = _inputIds.AsSpan<long>(group.Count * width);
        var mask = _attentionMask.AsSpan<long>(group.Count * width);
        var positions = _positionIds is null ? default : _positionIds.AsSpan<long>(group.Count * width);
        ids.Clear();
        mask.Clear();
        positions.Clear();
        for (var b = 0; b < group.Count; b++)
        {
            var tokens = group[b].TokenIds;
            for (var i = 0; i < tokens.Length; i++)
            {
                ids[b * width + i] = tokens[i];
                if (!positions.IsEmpty) positions[b * width + i] = i;
            }
            mask.Slice(b * width, tokens.Length).Fill(1);
        }
        RunHostInputs(KvSlot.IndexOf(group[0].Place), numSlots: group.Count, sequenceLength: width, totalLength: width);
    }

    /// <summary>input_ids [B, 1]; attention_mask [B, T], row b = ones(past_b + 1), T = max(past_b) + 1 — or, in fixed
    /// shapes, B the bucket and T the slot length; position_ids [B, 1] = past_b.</summary>
    private void RunDecode(ReadOnlySpan<SlotRow> rows)
    {
        if (_fixedDecodes is not null)
        {
            var bucket = _fixedDecodes.Prepare(rows);
            Run(firstSlot: 0, numSlots: bucket, sequenceLength: 1, totalLength: MaxLength,
                _fixedDecodes.InputIds(bucket), _fixedDecodes.AttentionMask(bucket), _fixedDecodes.DecodeRun(bucket) ?? _runOptions);
            return;
        }
        var batch = rows.Length;
        var total = 0;
        foreach (var row in rows) total = Math.Max(total, row.PastLength + 1);
        var ids = _inputIds.AsSpan<long>(batch);
        var mask = _attentionMask.AsSpan<long>(batch * total);
        var positions = _positionIds is null ? default : _positionIds.AsSpan<long>(batch);
        mask.Clear();
        for (var b = 0; b < batch; b++)
        {
            ids[b] = rows[b].TokenId;
            mask.Slice(b * total, rows[b].PastLength + 1).Fill(1);
            if (!positions.IsEmpty) positions[b] = rows[b].PastLength;
        }
        RunHostInputs(firstSlot: 0, numSlots: batch, sequenceLength: 1, totalLength: total);
    }

    /// <summary>input_ids [1, n]; attention_mask [1, past + n] of ones; position_ids [1, n] = past + i.</summary>
    private void RunPrefill(PrefillChunk chunk)
    {
        var n = chunk.TokenIds.Length;
        if (n > _maxTokensPerCall || chunk.PastLength + n > MaxLength)
        {
            throw new InvalidOperationException(
                $"chunk of {n} tokens after {chunk.PastLength} exceeds limits (chunk {_maxTokensPerCall}, length {MaxLength})");
        }
        var ids = _inputIds.AsSpan<long>(n);
        var positions = _positionIds is null ? default : _positionIds.AsSpan<long>(n);
        for (var i = 0; i < n; i++)
        {
            ids[i] = chunk.TokenIds[i];
            if (!positions.IsEmpty) positions[i] = chunk.PastLength + i;
        }
        _attentionMask.AsSpan<long>(chunk.PastLength + n).Fill(1);
        RunHostInputs(KvSlot.IndexOf(chunk.Place), numSlots: 1, sequenceLength: n, totalLength: chunk.PastLength + n);
    }

    /// <summary>A call with input_ids, attention_mask (and position_ids) from the host buffers (ONNX Runtime copies them up on CUDA); never captured.</summary>
    private void RunHostInputs(int firstSlot, int numSlots, int sequenceLength, int totalLength) =>
        Run(firstSlot, numSlots, sequenceLength, totalLength,
            Tensor(_inputIds, TensorElementType.Int64, [numSlots, sequenceLength], 8),
            Tensor(_attentionMask, TensorElementType.Int64, [numSlots, totalLength], 8),
            _fixedDecodes?.UncapturedRun ?? _runOptions,
            _positionIds is null ? null : Tensor(_positionIds, TensorElementType.Int64, [numSlots, sequenceLength], 8));

    /// <summary>One call over slots [firstSlot, firstSlot + numSlots); disposes <paramref name="inputIds"/>, <paramref name="attentionMask"/>
    /// and <paramref name="positionIds"/>.</summary>
    private void Run(int firstSlot, int numSlots, int sequenceLength, int totalLength, OrtValue inputIds, OrtValue attentionMask, RunOptions runOptions,
        OrtValue? positionIds = null)
    {
        var views = new List<OrtValue>(5 + 2 * _kv.NumLayers) { inputIds, attentionMask };
        try
        {
            _binding.ClearBoundInputs();
            _binding.ClearBoundOutputs();
            _binding.BindInput(_inputIdsName, inputIds);
            _binding.BindInput(_attentionMaskName, attentionMask);
            if (positionIds is not null)
            {
                views.Add(positionIds);
                _binding.BindInput(_positionIdsName!, positionIds);
            }
            _logits.Bind(_binding, _logitsName, [numSlots, sequenceLength, VocabSize], views);
            for (var layer = 0; layer < _kv.NumLayers; layer++)
            {
                var key = _kv.KeyView(layer, firstSlot, numSlots);
                var value = _kv.ValueView(layer, firstSlot, numSlots);
                views.Add(key);
                views.Add(value);
                // the same buffer as past and present: GQA writes the new rows in place
                _binding.BindInput(_pastKeyNames[layer], key);
                _binding.BindInput(_pastValueNames[layer], value);
                _binding.BindOutput(_presentKeyNames[layer], key);
                _binding.BindOutput(_presentValueNames[layer], value);
            }
            _session.RunWithBinding(runOptions, _binding);
            _logits.AfterRun(_binding);
            NumRuns++;
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException(
                $"decoder run failed (slots {firstSlot}..{firstSlot + numSlots - 1}, sequence {sequenceLength}, total {totalLength}): {e.Message}", e);
        }
        finally
        {
            foreach (var view in views)
            {
                view.Dispose();
            }
        }
    }

    private static OrtValue Tensor(NativeBuffer buffer, TensorElementType type, long[] shape, int elementSize)
    {
        var count = shape.Aggregate(1L, (a, b) => a * b);
        return OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, type, shape, buffer.At(0), count * elementSize);
    }

    private TensorElementType CheckContract(ModelPackage package)
    {
        string[] fed = [_inputIdsName, _attentionMaskName, .. _positionIdsName is null ? [] : new[] { _positionIdsName }, .. _pastKeyNames, .. _pastValueNames];
        DecoderSession.Require(_session, package, fed, new[] { _logitsName }.Concat(_presentKeyNames).Concat(_presentValueNames));
        DecoderSession.RequireNoOtherInputs(_session, package, fed);
        var inputs = _session.InputMetadata;
        var outputs = _session.OutputMetadata;
        if (outputs[_logitsName].ElementDataType != TensorElementType.Float)
        {
            throw new ModelPackageException($"{package.DecoderLocation}: logits must be float32, got {outputs[_logitsName].ElementDataType}");
        }
        var kv = inputs[_pastKeyNames[0]];
        var headSize = package.Config.Model.Decoder.HeadSize;
        if (kv.ElementDataType is not (TensorElementType.Float or TensorElementType.Float16 or TensorElementType.BFloat16)
            || kv.Dimensions is [.., > 0 and var last] && last != headSize)
        {
            throw new ModelPackageException(
                $"{package.DecoderLocation}: {_pastKeyNames[0]} is {kv.ElementDataType} [{string.Join(", ", kv.Dimensions)}]; a quantized KV cache " +
                $"(ONNX Runtime GenAI's builder option kv_cache_quant_type) is not supported: the engine keeps float KV of head size {headSize}");
        }
        return kv.ElementDataType;
    }

    public void Dispose()
    {
        _cuda?.TryMakeCurrent();
        _binding.Dispose();
        _runOptions.Dispose();
        // device allocations go back to the session's allocator: free them while the session lives
        _kv.Dispose();
        _logits.Dispose();
        _fixedDecodes?.Dispose();
        _kvMemory.Dispose();
        _session.Dispose();
        _inputIds.Dispose();
        _attentionMask.Dispose();
        _positionIds?.Dispose();
    }
}

using System.Collections.Immutable;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// Runs a step plan on a PagedAttention decoder (variant B, KV blocks), CUDA only: ONE <c>Run</c> per step packs
/// every decode and every prefill chunk, in plan order (decodes, then chunks), each request reading and writing its KV
/// through its block table (the row's <see cref="KvBlockTable"/>). The KV block pool lives on the device
/// (<see cref="PagedKvCache"/>), bound once as both input and output of every layer. Per step, the small int inputs
/// (input_ids, cumulative_sequence_lengths, past_sequence_lengths, block_table) are bound as page-locked host tensors
/// that ONNX Runtime copies up (a few KB); attention_metadata is bound in CPU memory, where the kernel reads it. Logits
/// <c>[batch, vocab]</c> (the graph keeps only each request's last token) go through <see cref="StepLogits"/>: with
/// <c>greedy_ids</c> they stay on the device, and only the ids and the rows sampled on the host or asked for come down.
/// <c>scripts/gpu/bench-h100.sh paged-check</c> checks it against variant A with the same weights.
/// </summary>
internal sealed class PagedRunner : IStepRunner
{
    /// <summary>PagedAttention's batch limit in ONNX Runtime 1.31 (a 256-thread block scan over the batch).</summary>
    public const int MaxBatchSizeLimit = 256;

    private readonly InferenceSession _session;
    private readonly CudaKvMemory _kvMemory;
    private readonly PagedKvCache _kv;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _runOptions = new();
    private readonly NativeBuffer _inputIds;          // int64 [maxScheduledTokens], pinned
    private readonly NativeBuffer _cumulativeLengths; // int32 [maxBatch + 1], pinned
    private readonly NativeBuffer _pastLengths;       // int32 [maxBatch], pinned
    private readonly NativeBuffer _blockTable;        // int32 [maxBatch, maxBlocksPerSequence], pinned
    private readonly NativeBuffer _metadata;          // int32 [3]: max_query_len, max_kv_len, min_kv_len; CPU input
    private readonly StepLogits _logits;              // [maxBatch, vocab] and the graph's argmax per request
    private readonly string _inputIdsName, _cumulativeName, _pastName, _blockTableName, _metadataName, _logitsName;
    private readonly int _maxScheduledTokens, _maxBlocksPerSequence;
    private readonly CudaDevice _cuda;                // made current first by every entry point (CudaDevice)

    /// <param name="gpu">The GPU the session and the KV pool are on (<see cref="EngineOptions.Gpu"/>).</param>
    /// <param name="swapSpaceBytes">Page-locked host memory for swapped-out KV (<see cref="EngineOptions.KvSwapSpaceBytes"/>), in whole blocks.</param>
    public PagedRunner(ModelPackage package, int maxBatchSize, int maxLength, int maxScheduledTokens, int numKvBlocks, int numThreads,
        SamplingSite sampling = SamplingSite.Auto, int gpu = 0, long swapSpaceBytes = 0)
    {
        _cuda = new CudaDevice(gpu);
        _cuda.MakeCurrent(); // this thread's CUDA calls below (free memory, pinned buffers) are on that GPU
        var config = package.Config;
        var decoder = config.Model.Decoder;
        var inputs = decoder.Inputs!;
        var outputs = decoder.Outputs ?? new GenAiDecoderOutputs();
        var blockSize = config.DynamicBatching!.BlockSize;
        if (maxBatchSize < 1 || maxBatchSize > MaxBatchSizeLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(maxBatchSize), maxBatchSize, $"PagedAttention runs 1 to {MaxBatchSizeLimit} requests per call");
        }
        VocabSize = config.Model.VocabSize;
        MaxLength = maxLength;
        NumSlots = maxBatchSize;
        _maxScheduledTokens = maxScheduledTokens;
        _maxBlocksPerSequence = (maxLength + blockSize - 1) / blockSize;
        (_inputIdsName, _cumulativeName, _pastName, _blockTableName, _metadataName, _logitsName) =
            (inputs.InputIds, inputs.CumulativeSequenceLengths!, inputs.PastSequenceLengths!, inputs.BlockTable!, inputs.AttentionMetadata!, outputs.Logits);
        var layers = Enumerable.Range(0, decoder.NumHiddenLayers).ToArray();
        string[] pastKeys = [.. layers.Select(i => DecoderSession.Name(inputs.PastKeyNames, i))];
        string[] pastValues = [.. layers.Select(i => DecoderSession.Name(inputs.PastValueNames, i))];
        string[] presentKeys = [.. layers.Select(i => DecoderSession.Name(outputs.PresentKeyNames, i))];
        string[] presentValues = [.. layers.Select(i => DecoderSession.Name(outputs.PresentValueNames, i))];

        using var owned = new DisposeOnFailure();
        owned.Own(_runOptions);
        _session = owned.Own(DecoderSession.Open(package, numThreads, ExecutionDevice.Cuda, gpu));
        string[] fed = [_inputIdsName, _cumulativeName, _pastName, _blockTableName, _metadataName, .. pastKeys, .. pastValues];
        DecoderSession.Require(_session, package, fed, new[] { _logitsName }.Concat(presentKeys).Concat(presentValues));
        DecoderSession.RequireNoOtherInputs(_session, package, fed);
        var kvType = CheckContract(package, pastKeys[0], blockSize);
        KvElementBytes = KvBuffers.ElementSize(kvType);
        _kvMemory = owned.Own(new CudaKvMemory(_session, gpu));
        try
        {
            var perLayer = PagedKvCache.BlockBytesPerLayer(blockSize, decoder.NumKeyValueHeads, decoder.HeadSize, kvType);
            var maxBlocks = (int)Math.Min(int.MaxValue, uint.MaxValue / perLayer); // one layer's buffer: at most 4 GiB
            // as many as asked (or the package names), fewer when fewer fit; none asked: as many as fit. Said by LoadedModel.SlotsNote
            var asked = numKvBlocks > 0 ? numKvBlocks : config.DynamicBatching.NumBlocks;
            var blockBytes = PagedKvCache.BlockBytes(decoder.NumHiddenLayers, blockSize, decoder.NumKeyValueHeads, decoder.HeadSize, kvType);
            numKvBlocks = _kvMemory.FitBlocks(blockBytes, asked > 0 ? Math.Min(asked, maxBlocks) : maxBlocks);
            var numSwapBlocks = (int)Math.Min(swapSpaceBytes / blockBytes, maxBlocks);
            _kv = owned.Own(new PagedKvCache(_kvMemory, decoder.NumHiddenLayers, numKvBlocks, blockSize, decoder.NumKeyValueHeads, decoder.HeadSize, kvType,
                numSwapBlocks));
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException($"could not allocate the KV cache ({numKvBlocks} blocks of {blockSize} tokens) on CUDA: {e.Message}", e);
        }
        _inputIds = owned.Own(new NativeBuffer(8L * maxScheduledTokens, pinned: true));
        _cumulativeLengths = owned.Own(new NativeBuffer(4L * (maxBatchSize + 1), pinned: true));
        _pastLengths = owned.Own(new NativeBuffer(4L * maxBatchSize, pinned: true));
        _blockTable = owned.Own(new NativeBuffer(4L * maxBatchSize * _maxBlocksPerSequence, pinned: true));
        _metadata = owned.Own(new NativeBuffer(4L * 3));
        _logits = owned.Own(new StepLogits(_session, _kvMemory, maxBatchSize, VocabSize, pinned: true, ExecutionDevice.Cuda, gpu, sampling));
        _binding = owned.Own(_session.CreateIoBinding());
        for (var layer = 0; layer < decoder.NumHiddenLayers; layer++)
        {
            // the same device buffer as input and output, once: PagedAttention writes the new keys and values in place
            _binding.BindInput(pastKeys[layer], _kv.Keys(layer));
            _binding.BindInput(pastValues[layer], _kv.Values(layer));
            _binding.BindOutput(presentKeys[layer], _kv.Keys(layer));
            _binding.BindOutput(presentValues[layer], _kv.Values(layer));
        }
        Blocks = new KvBlocks(numKvBlocks, blockSize);
        owned.Keep();
    }

    public int VocabSize { get; }

    /// <summary>Requests per call at most (the scheduler's batch cap).</summary>
    public int NumSlots { get; }

    public int MaxLength { get; }

    public long KvCacheBytes => _kv.TotalBytes;

    public int KvElementBytes { get; }

    /// <summary>2: PagedAttention's activations are float16 or bfloat16 (its schema's T), its cache perhaps int8.</summary>
    public int ActivationElementBytes => 2;

    public int NumSwapBlocks => _kv.NumSwapBlocks;

    public void SwapOut(ImmutableArray<KvUnitCopy> copies)
    {
        _cuda.MakeCurrent();
        foreach (var copy in copies) _kv.SwapOut(copy.From, copy.To, copy.NumTokens);
    }

    public void SwapIn(ImmutableArray<KvUnitCopy> copies)
    {
        _cuda.MakeCurrent();
        foreach (var copy in copies) _kv.SwapIn(copy.From, copy.To, copy.NumTokens);
    }

    /// <summary>The device block pool, for the KV cache manager's block tables.</summary>
    public KvBlocks Blocks { get; }

    public bool SelectsGreedyInGraph => _logits.HasGreedyIds;

    public bool SamplesInGraph => _logits.SamplesInGraph;

    public bool TakesLogprobsInGraph => _logits.TakesLogprobsInGraph;

    public bool CopiesKv => true;

    public void CopyKv(KvFork fork)
    {
        _cuda.MakeCurrent();
        foreach (var copy in fork.Copies)
        {
            _kv.CopyRows(copy.From, copy.To, copy.NumTokens);
        }
    }

    public StepOutputs Execute(StepPlan plan)
    {
        _cuda.MakeCurrent(); // the engine host's thread: the copies below and in StepLogits use the current device
        // one request per row, decodes first: (sequence, past length, tokens, samples this step, block table)
        var rows = plan.DecodeRows.Select(r => (r.SequenceId, r.PastLength, Tokens: ImmutableArray.Create(r.TokenId), NeedsLogits: true, Blocks: KvBlockTable.BlocksOf(r.Place)))
            .Concat(plan.Prefills.Select(p => (p.SequenceId, p.PastLength, Tokens: p.TokenIds, p.NeedsLogits, Blocks: KvBlockTable.BlocksOf(p.Place))))
            .ToList();
        var batch = rows.Count;
        var numTokens = rows.Sum(r => r.Tokens.Length);
        if (batch > NumSlots || numTokens > _maxScheduledTokens)
        {
            throw new InvalidOperationException($"step of {batch} requests and {numTokens} tokens exceeds the runner's {NumSlots} requests and {_maxScheduledTokens} tokens");
        }
        var width = FillInputs(rows);
        Run(batch, numTokens, width);

        _logits.BeginStep(rows.Count(r => r.NeedsLogits));
        for (var b = 0; b < batch; b++)
        {
            if (rows[b].NeedsLogits) _logits.Collect(plan, rows[b].SequenceId, b); // row b = request b's last token
        }
        return _logits.EndStep();
    }

    /// <summary>Writes the packed inputs; returns the block table's width (the longest table this step).</summary>
    private int FillInputs(List<(long SequenceId, int PastLength, ImmutableArray<int> Tokens, bool NeedsLogits, ImmutableArray<int> Blocks)> rows)
    {
        var batch = rows.Count;
        var width = rows.Max(r => r.Blocks.Length);
        var ids = _inputIds.AsSpan<long>(rows.Sum(r => r.Tokens.Length));   // [numTokens]
        var cumulative = _cumulativeLengths.AsSpan<int>(batch + 1);          // [batch + 1]
        var past = _pastLengths.AsSpan<int>(batch);                          // [batch]
        var table = _blockTable.AsSpan<int>(batch * width);                  // [batch, width]
        table.Clear(); // shorter tables padded with block 0: read by no one (each request reads its own length)
        var metadata = _metadata.AsSpan<int>(3);
        metadata[0] = 0;
        metadata[1] = 0;
        metadata[2] = int.MaxValue;
        cumulative[0] = 0;
        for (var b = 0; b < batch; b++)
        {
            var (sequenceId, pastLength, tokens, _, blocks) = rows[b];
            var kvLength = pastLength + tokens.Length;
            if (kvLength > MaxLength || blocks.Length * Blocks.BlockSize < kvLength)
            {
                throw new InvalidOperationException(
                    $"sequence {sequenceId}: {kvLength} tokens exceed its {blocks.Length} blocks of {Blocks.BlockSize} or the maximum length {MaxLength}");
            }
            for (var i = 0; i < tokens.Length; i++)
            {
                ids[cumulative[b] + i] = tokens[i];
            }
            cumulative[b + 1] = cumulative[b] + tokens.Length;
            past[b] = pastLength;
            blocks.AsSpan().CopyTo(table.Slice(b * width, width));
            metadata[0] = Math.Max(metadata[0], tokens.Length);
            metadata[1] = Math.Max(metadata[1], kvLength);
            metadata[2] = Math.Min(metadata[2], kvLength); // a lower bound of the longest KV length, as the kernel asks
        }
        return width;
    }

    private void Run(int batch, int numTokens, int width)
    {
        var views = new List<OrtValue>(6);
        try
        {
            // rebinding a name replaces its previous binding; the KV caches stay bound from the constructor
            Bind(views, _inputIdsName, _inputIds, TensorElementType.Int64, [numTokens], 8);
            Bind(views, _cumulativeName, _cumulativeLengths, TensorElementType.Int32, [batch + 1], 4);
            Bind(views, _pastName, _pastLengths, TensorElementType.Int32, [batch], 4);
            Bind(views, _blockTableName, _blockTable, TensorElementType.Int32, [batch, width], 4);
            Bind(views, _metadataName, _metadata, TensorElementType.Int32, [3], 4);
            _logits.Bind(_binding, _logitsName, [batch, VocabSize], views);
            _session.RunWithBinding(_runOptions, _binding);
            _logits.AfterRun(_binding);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException($"paged decoder run failed ({batch} requests, {numTokens} tokens, block table width {width}): {e.Message}", e);
        }
        finally
        {
            foreach (var view in views)
            {
                view.Dispose();
            }
        }
    }

    private void Bind(List<OrtValue> views, string name, NativeBuffer buffer, TensorElementType type, long[] shape, int elementSize)
    {
        var tensor = Tensor(buffer, type, shape, elementSize);
        views.Add(tensor);
        _binding.BindInput(name, tensor);
    }

    private static OrtValue Tensor(NativeBuffer buffer, TensorElementType type, long[] shape, int elementSize)
    {
        var count = shape.Aggregate(1L, (a, b) => a * b);
        return OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, type, shape, buffer.At(0), count * elementSize);
    }

    /// <summary>float32 logits, a float16/bfloat16 cache whose block dimension is the package's block size.</summary>
    private TensorElementType CheckContract(ModelPackage package, string firstKeyCache, int blockSize)
    {
        var logits = _session.OutputMetadata[_logitsName];
        if (logits.ElementDataType != TensorElementType.Float)
        {
            throw new ModelPackageException($"{package.DecoderLocation}: logits must be float32, got {logits.ElementDataType}");
        }
        var cache = _session.InputMetadata[firstKeyCache];
        if (cache.ElementDataType is not (TensorElementType.Float16 or TensorElementType.BFloat16 or TensorElementType.Int8))
        {
            throw new ModelPackageException(
                $"{package.DecoderLocation}: KV cache is {cache.ElementDataType}; PagedAttention needs float16, bfloat16 or int8 " +
                "(export.py --attention paged --dtype float16 [--kv-cache int8 --kv-scales ...])");
        }
        if (cache.Dimensions.Length != 4 || (cache.Dimensions[1] > 0 && cache.Dimensions[1] != blockSize))
        {
            throw new ModelPackageException(
                $"{package.DecoderLocation}: KV cache input {firstKeyCache} is [{string.Join(", ", cache.Dimensions)}]; genai_config.json says [num_blocks, {blockSize}, kv_heads, head_size]");
        }
        return cache.ElementDataType;
    }

    public void Dispose()
    {
        _cuda.TryMakeCurrent();
        _binding.Dispose();
        _runOptions.Dispose();
        // device allocations go back to the session's allocator: free them while the session lives
        _kv.Dispose();
        _logits.Dispose();
        _kvMemory.Dispose();
        _session.Dispose();
        _inputIds.Dispose();
        _cumulativeLengths.Dispose();
        _pastLengths.Dispose();
        _blockTable.Dispose();
        _metadata.Dispose();
    }
}

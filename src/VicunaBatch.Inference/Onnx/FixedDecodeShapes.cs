using System.Globalization;
using System.Numerics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// Variant A's decode calls in a few fixed shapes, so that ONNX Runtime can capture each once as a CUDA graph and then
/// replay it (<see cref="EngineOptions.CudaGraphs"/>): one launch a step instead of a kernel launch per node from the
/// host. A call's rows are padded with filler rows to a bucket — a power of two, at most the slots — and its
/// <c>attention_mask</c> is always the slots' full length wide, so the graph's <c>total_sequence_length</c> (which
/// GroupQueryAttention reads on the host) is the same in every call; each row still attends only to its own length
/// (<c>seqlens_k</c>, the mask's row sum). A replay reads the device addresses of its capture, so with capture the
/// inputs go up into device buffers of this class's own, and the outputs the runner binds stay where they are.
/// Bucket b is graph id b (<c>gpu_graph_id</c>); every other call of the session runs uncaptured (id -1).
/// Without capture (the CPU) the same shapes run as ordinary calls: the tests check the padding there.
/// </summary>
internal sealed class FixedDecodeShapes : IDisposable
{
    private const string GraphIdKey = "gpu_graph_id"; // kOrtRunOptionsConfigCudaGraphAnnotation

    private readonly NativeBuffer _ids;          // int64 [numSlots]
    private readonly NativeBuffer _mask;         // int64 [numSlots, maxLength]: row r is _ones[r] ones, then zeros
    private readonly int[] _ones;
    private readonly KvMemory _memory;
    private readonly KvAllocation? _deviceIds;   // with capture: the same two buffers on the GPU
    private readonly KvAllocation? _deviceMask;
    private readonly Dictionary<int, RunOptions> _decodeRuns = [];

    /// <param name="captured">The session was opened with CUDA graphs (<see cref="DecoderSession.Open(Package.ModelPackage, int, ExecutionDevice, int, bool)"/>) and <paramref name="memory"/> is device memory.</param>
    public FixedDecodeShapes(KvMemory memory, int numSlots, int maxLength, bool captured)
    {
        NumSlots = numSlots;
        MaxLength = maxLength;
        _memory = memory;
        _ones = new int[numSlots];
        using var owned = new DisposeOnFailure();
        _ids = owned.Own(new NativeBuffer(8L * numSlots, pinned: captured));
        _mask = owned.Own(new NativeBuffer(8L * numSlots * maxLength, pinned: captured));
        if (captured)
        {
            _deviceIds = owned.Own(memory.Allocate(_ids.NumBytes));
            _deviceMask = owned.Own(memory.Allocate(_mask.NumBytes));
            UncapturedRun = owned.Own(GraphRun(-1));
        }
        owned.Keep();
    }

    public int NumSlots { get; }

    public int MaxLength { get; }

    /// <summary>With capture: the run options of every call that is not a fixed-shape decode (prefill calls); else null.</summary>
    public RunOptions? UncapturedRun { get; }

    /// <summary>Rows of the call that decodes <paramref name="rows"/> rows: the next power of two, at most <paramref name="numSlots"/>.</summary>
    public static int Bucket(int rows, int numSlots)
    {
        if (rows < 1 || rows > numSlots)
        {
            throw new ArgumentOutOfRangeException(nameof(rows), rows, $"a decode call has 1 to {numSlots} rows");
        }
        return Math.Min(numSlots, (int)BitOperations.RoundUpToPowerOf2((uint)rows));
    }

    /// <summary>
    /// Writes the inputs of the decode call over <paramref name="rows"/> (row r = slot r), padded to the bucket with
    /// fillers at position 0 — the slots past <paramref name="rows"/> are free, and a request admitted to one later
    /// writes its prompt from position 0 — and returns the bucket. With capture the inputs are on the device when it returns.
    /// </summary>
    public int Prepare(ReadOnlySpan<SlotRow> rows)
    {
        var bucket = Bucket(rows.Length, NumSlots);
        var ids = _ids.AsSpan<long>(bucket);
        var mask = _mask.AsSpan<long>(bucket * MaxLength);
        for (var r = 0; r < bucket; r++)
        {
            var row = r < rows.Length ? rows[r] : new SlotRow(SlotRow.Filler, 0, 0);
            var ones = row.PastLength + 1;
            if (ones > MaxLength)
            {
                throw new InvalidOperationException($"decode row {r} after {row.PastLength} tokens exceeds the slot length {MaxLength}");
            }
            ids[r] = row.TokenId;
            // only what changed since this row's last call: one more 1 for a decode, a reset for a new request
            var line = mask.Slice(r * MaxLength, MaxLength);
            if (ones > _ones[r]) line[_ones[r]..ones].Fill(1);
            else line[ones.._ones[r]].Clear();
            _ones[r] = ones;
        }
        if (_deviceIds is not null)
        {
            CudaRuntime.CopyToDevice(_deviceIds.Pointer, _ids.At(0), 8L * bucket);
            CudaRuntime.CopyToDevice(_deviceMask!.Pointer, _mask.At(0), 8L * bucket * MaxLength);
        }
        return bucket;
    }

    /// <summary><c>input_ids</c> [bucket, 1] of the prepared call; the caller disposes the view.</summary>
    public OrtValue InputIds(int bucket) => View(_deviceIds, _ids, [bucket, 1]);

    /// <summary><c>attention_mask</c> [bucket, max length] of the prepared call; the caller disposes the view.</summary>
    public OrtValue AttentionMask(int bucket) => View(_deviceMask, _mask, [bucket, MaxLength]);

    /// <summary>With capture: the run options of bucket <paramref name="bucket"/>'s graph; else null (the runner's own).</summary>
    public RunOptions? DecodeRun(int bucket)
    {
        if (_deviceIds is null) return null;
        if (!_decodeRuns.TryGetValue(bucket, out var run))
        {
            run = GraphRun(bucket);
            _decodeRuns.Add(bucket, run);
        }
        return run;
    }

    private OrtValue View(KvAllocation? device, NativeBuffer host, long[] shape)
    {
        var numBytes = 8L * shape[0] * shape[1];
        return device is null
            ? OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Int64, shape, host.At(0), numBytes)
            : OrtValue.CreateTensorValueWithData(_memory.MemoryInfo, TensorElementType.Int64, shape, device.Pointer, numBytes);
    }

    private static RunOptions GraphRun(int graphId)
    {
        var run = new RunOptions();
        try
        {
            run.AddRunConfigEntry(GraphIdKey, graphId.ToString(CultureInfo.InvariantCulture));
            return run;
        }
        catch
        {
            run.Dispose();
            throw;
        }
    }

    /// <summary>Frees the device buffers into the session's allocator: call while the session and its memory live.</summary>
    public void Dispose()
    {
        foreach (var run in _decodeRuns.Values) run.Dispose();
        UncapturedRun?.Dispose();
        _deviceIds?.Dispose();
        _deviceMask?.Dispose();
        _ids.Dispose();
        _mask.Dispose();
    }
}

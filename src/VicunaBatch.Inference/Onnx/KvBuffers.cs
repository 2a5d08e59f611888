using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// The shared past/present KV buffers of a GroupQueryAttention graph: per layer one key and one value
/// buffer <c>[numSlots, kvHeads, maxLength, headSize]</c>. Slot s is row s; a row is contiguous, so a batch
/// of the first B rows or one row alone can be bound as a tensor view. The buffers come from a <see cref="KvMemory"/>
/// (host memory for the CPU provider, device memory for CUDA), allocated once here; the memory must outlive them.
/// </summary>
internal sealed class KvBuffers : IDisposable
{
    private readonly KvMemory _memory;
    private readonly KvAllocation[] _keys;
    private readonly KvAllocation[] _values;

    public KvBuffers(KvMemory memory, int numLayers, int numSlots, int numKvHeads, int maxLength, int headSize, TensorElementType elementType)
    {
        _memory = memory;
        NumLayers = numLayers;
        NumSlots = numSlots;
        NumKvHeads = numKvHeads;
        MaxLength = maxLength;
        HeadSize = headSize;
        ElementType = elementType;
        RowBytes = (long)numKvHeads * maxLength * headSize * ElementSize(elementType);
        _keys = new KvAllocation[numLayers];
        _values = new KvAllocation[numLayers];
        try
        {
            for (var layer = 0; layer < numLayers; layer++)
            {
                _keys[layer] = memory.Allocate(RowBytes * numSlots);
                _values[layer] = memory.Allocate(RowBytes * numSlots);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Bytes of one slot over every layer's key and value buffers.</summary>
    public static long SlotBytes(int numLayers, int numKvHeads, int maxLength, int headSize, TensorElementType elementType) =>
        2L * numLayers * numKvHeads * maxLength * headSize * ElementSize(elementType);

    internal static int ElementSize(TensorElementType elementType) => elementType switch
    {
        TensorElementType.Float => 4,
        TensorElementType.Float16 or TensorElementType.BFloat16 => 2,
        TensorElementType.Int8 => 1, // a quantized PagedAttention cache (export.py --kv-cache int8)
        _ => throw new ArgumentException($"unsupported KV element type {elementType}", nameof(elementType)),
    };

    public int NumLayers { get; }

    public int NumSlots { get; }

    public int NumKvHeads { get; }

    public int MaxLength { get; }

    public int HeadSize { get; }

    public TensorElementType ElementType { get; }

    /// <summary>Bytes of one slot's region in one layer's key (or value) buffer.</summary>
    public long RowBytes { get; }

    public long TotalBytes => RowBytes * NumSlots * NumLayers * 2;

    /// <summary>A view of slots [firstSlot, firstSlot + numSlots) of one layer: <c>[numSlots, kvHeads, maxLength, headSize]</c>.</summary>
    public OrtValue KeyView(int layer, int firstSlot, int numSlots) => View(_keys[layer], firstSlot, numSlots);

    public OrtValue ValueView(int layer, int firstSlot, int numSlots) => View(_values[layer], firstSlot, numSlots);

    /// <summary>
    /// Copies tokens [0, <paramref name="numTokens"/>) of slot <paramref name="fromSlot"/> into slot
    /// <paramref name="toSlot"/> in every layer's keys and values: per layer and buffer one strided copy, a run per KV head.
    /// </summary>
    public void CopyTokens(int fromSlot, int toSlot, int numTokens)
    {
        if (fromSlot < 0 || fromSlot >= NumSlots || toSlot < 0 || toSlot >= NumSlots || fromSlot == toSlot)
        {
            throw new ArgumentOutOfRangeException(nameof(toSlot), $"copy from slot {fromSlot} to slot {toSlot}: two different slots of [0, {NumSlots}) needed");
        }
        if (numTokens < 0 || numTokens > MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(numTokens), numTokens, $"a slot holds {MaxLength} tokens");
        }
        if (numTokens == 0) return;
        var headBytes = (long)MaxLength * HeadSize * ElementSize(ElementType);
        var tokenBytes = (long)numTokens * HeadSize * ElementSize(ElementType);
        foreach (var buffer in _keys.Concat(_values))
        {
            _memory.Copy(buffer.At(RowBytes * toSlot), buffer.At(RowBytes * fromSlot), headBytes, tokenBytes, NumKvHeads);
        }
    }

    private OrtValue View(KvAllocation buffer, int firstSlot, int numSlots)
    {
        if (firstSlot < 0 || numSlots < 1 || firstSlot + numSlots > NumSlots)
        {
            throw new ArgumentOutOfRangeException(nameof(firstSlot), $"slots [{firstSlot}, {firstSlot + numSlots}) outside [0, {NumSlots})");
        }
        long[] shape = [numSlots, NumKvHeads, MaxLength, HeadSize];
        return OrtValue.CreateTensorValueWithData(
            _memory.MemoryInfo, ElementType, shape, buffer.At(RowBytes * firstSlot), RowBytes * numSlots);
    }

    public void Dispose()
    {
        foreach (var buffer in _keys.Concat(_values))
        {
            buffer?.Dispose();
        }
    }
}

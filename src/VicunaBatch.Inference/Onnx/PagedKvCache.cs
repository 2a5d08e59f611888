using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// The KV block pool of a PagedAttention graph, in device memory, allocated once: per layer one key and one value
/// buffer <c>[numBlocks, blockSize, kvHeads, headSize]</c> and one tensor over each, bound for the life of the session
/// as both the layer's <c>past_key_values.{i}.*</c> input and its <c>present.{i}.*</c> output (the kernel updates
/// the cache in place and refuses two buffers). Which block belongs to which request is the engine's
/// <see cref="Engine.BlockTables"/>; this class knows only memory. Not zeroed: the kernel reads a request's positions
/// only after writing them.
/// </summary>
internal sealed class PagedKvCache : IDisposable
{
    private readonly KvMemory _memory;
    private readonly KvAllocation[] _allocations;
    private readonly OrtValue[] _tensors;

    public PagedKvCache(KvMemory memory, int numLayers, int numBlocks, int blockSize, int numKvHeads, int headSize, TensorElementType elementType)
    {
        _memory = memory;
        NumLayers = numLayers;
        NumBlocks = numBlocks;
        BlockSize = blockSize;
        BlockLayerBytes = BlockBytesPerLayer(blockSize, numKvHeads, headSize, elementType);
        LayerBytes = numBlocks * BlockLayerBytes;
        _allocations = new KvAllocation[2 * numLayers];
        _tensors = new OrtValue[2 * numLayers];
        long[] shape = [numBlocks, blockSize, numKvHeads, headSize];
        try
        {
            for (var i = 0; i < 2 * numLayers; i++)
            {
                _allocations[i] = memory.Allocate(LayerBytes);
                _tensors[i] = OrtValue.CreateTensorValueWithData(memory.MemoryInfo, elementType, shape, _allocations[i].Pointer, LayerBytes);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Bytes of one block in one layer's key (or value) buffer.</summary>
    public static long BlockBytesPerLayer(int blockSize, int numKvHeads, int headSize, TensorElementType elementType) =>
        (long)blockSize * numKvHeads * headSize * KvBuffers.ElementSize(elementType);

    /// <summary>Bytes of one block over every layer's key and value buffers.</summary>
    public static long BlockBytes(int numLayers, int blockSize, int numKvHeads, int headSize, TensorElementType elementType) =>
        2L * numLayers * BlockBytesPerLayer(blockSize, numKvHeads, headSize, elementType);

    public int NumLayers { get; }

    public int NumBlocks { get; }

    public int BlockSize { get; }

    /// <summary>Bytes of one block in one layer's key (or value) buffer.</summary>
    public long BlockLayerBytes { get; }

    /// <summary>Bytes of one layer's key (or value) buffer.</summary>
    public long LayerBytes { get; }

    public long TotalBytes => LayerBytes * 2 * NumLayers;

    /// <summary>Layer <paramref name="layer"/>'s key cache <c>[numBlocks, blockSize, kvHeads, headSize]</c>.</summary>
    public OrtValue Keys(int layer) => _tensors[2 * layer];

    /// <summary>Layer <paramref name="layer"/>'s value cache <c>[numBlocks, blockSize, kvHeads, headSize]</c>.</summary>
    public OrtValue Values(int layer) => _tensors[2 * layer + 1];

    /// <summary>Copies rows [0, <paramref name="numRows"/>) (tokens) of block <paramref name="fromBlock"/> into block <paramref name="toBlock"/> in every layer's keys and values.</summary>
    public void CopyRows(int fromBlock, int toBlock, int numRows)
    {
        if (fromBlock < 0 || fromBlock >= NumBlocks || toBlock < 0 || toBlock >= NumBlocks || fromBlock == toBlock)
        {
            throw new ArgumentOutOfRangeException(nameof(toBlock), $"copy from block {fromBlock} to block {toBlock}: two different blocks of [0, {NumBlocks}) needed");
        }
        if (numRows < 0 || numRows > BlockSize)
        {
            throw new ArgumentOutOfRangeException(nameof(numRows), numRows, $"a block holds {BlockSize} tokens");
        }
        if (numRows == 0) return;
        var bytes = BlockLayerBytes / BlockSize * numRows; // a row: kvHeads × headSize elements
        foreach (var allocation in _allocations)
        {
            _memory.Copy(allocation.At(BlockLayerBytes * toBlock), allocation.At(BlockLayerBytes * fromBlock), bytes, bytes, 1);
        }
    }

    public void Dispose()
    {
        foreach (var tensor in _tensors)
        {
            tensor?.Dispose();
        }
        foreach (var allocation in _allocations)
        {
            allocation?.Dispose();
        }
    }
}

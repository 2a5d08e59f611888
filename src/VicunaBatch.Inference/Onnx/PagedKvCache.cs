using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// The KV block pool of a PagedAttention graph, in device memory, allocated once: per layer one key and one value
/// buffer <c>[numBlocks, blockSize, kvHeads, headSize]</c> and one tensor over each, bound for the life of the session
/// as both the layer's <c>past_key_values.{i}.*</c> input and its <c>present.{i}.*</c> output (the kernel updates
/// the cache in place and refuses two buffers). Which block belongs to which request is the engine's
/// <see cref="Engine.BlockTables"/>; this class knows only memory. Not zeroed: the kernel reads a request's positions
/// only after writing them. With swap blocks, as many blocks of host memory per buffer hold swapped-out requests' KV.
/// </summary>
internal sealed class PagedKvCache : IDisposable
{
    private readonly KvMemory _memory;
    private readonly KvAllocation[] _allocations;
    private readonly OrtValue[] _tensors;
    private readonly KvAllocation[] _swap; // per key or value buffer: NumSwapBlocks blocks of host memory

    public PagedKvCache(KvMemory memory, int numLayers, int numBlocks, int blockSize, int numKvHeads, int headSize, TensorElementType elementType,
        int numSwapBlocks = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numSwapBlocks);
        _memory = memory;
        NumLayers = numLayers;
        NumBlocks = numBlocks;
        BlockSize = blockSize;
        BlockLayerBytes = BlockBytesPerLayer(blockSize, numKvHeads, headSize, elementType);
        LayerBytes = numBlocks * BlockLayerBytes;
        _allocations = new KvAllocation[2 * numLayers];
        _tensors = new OrtValue[2 * numLayers];
        NumSwapBlocks = numSwapBlocks;
        _swap = new KvAllocation[numSwapBlocks > 0 ? 2 * numLayers : 0];
        long[] shape = [numBlocks, blockSize, numKvHeads, headSize];
        try
        {
            for (var i = 0; i < 2 * numLayers; i++)
            {
                _allocations[i] = memory.Allocate(LayerBytes);
                _tensors[i] = OrtValue.CreateTensorValueWithData(memory.MemoryInfo, elementType, shape, _allocations[i].Pointer, LayerBytes);
            }
            for (var i = 0; i < _swap.Length; i++)
            {
                _swap[i] = memory.AllocateHost(numSwapBlocks * BlockLayerBytes);
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

    /// <summary>Blocks of host memory for swapped-out KV (in every layer's keys and values).</summary>
    public int NumSwapBlocks { get; }

    /// <summary>Copies rows [0, <paramref name="numRows"/>) of block <paramref name="block"/> into host block <paramref name="hostBlock"/>, every layer's keys and values.</summary>
    public void SwapOut(int block, int hostBlock, int numRows) => CopySwapped(block, hostBlock, numRows, toHost: true);

    /// <summary>Copies rows [0, <paramref name="numRows"/>) of host block <paramref name="hostBlock"/> into block <paramref name="block"/>, every layer's keys and values.</summary>
    public void SwapIn(int hostBlock, int block, int numRows) => CopySwapped(block, hostBlock, numRows, toHost: false);

    private void CopySwapped(int block, int hostBlock, int numRows, bool toHost)
    {
        var bytes = SwapBytes(block, hostBlock, numRows);
        for (var i = 0; i < _swap.Length; i++)
        {
            var (kv, host) = (_allocations[i].At(BlockLayerBytes * block), _swap[i].At(BlockLayerBytes * hostBlock));
            if (toHost) _memory.CopyToHost(host, kv, bytes);
            else _memory.CopyFromHost(kv, host, bytes);
        }
    }

    private long SwapBytes(int block, int hostBlock, int numRows)
    {
        if (block < 0 || block >= NumBlocks || hostBlock < 0 || hostBlock >= NumSwapBlocks)
        {
            throw new ArgumentOutOfRangeException(nameof(hostBlock), $"block {block} and host block {hostBlock}: a block of [0, {NumBlocks}) and a host block of [0, {NumSwapBlocks}) needed");
        }
        if (numRows < 1 || numRows > BlockSize)
        {
            throw new ArgumentOutOfRangeException(nameof(numRows), numRows, $"a block holds 1 to {BlockSize} tokens");
        }
        return BlockLayerBytes / BlockSize * numRows;
    }

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
        foreach (var allocation in _allocations.Concat(_swap))
        {
            allocation?.Dispose();
        }
    }
}

using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using VicunaBatch.Inference.Onnx;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// The runners' KV copies for a fork (n choices of one prompt), on host memory, element by element: exactly the
/// forked tokens of every layer's keys and values, in each variant's layout, and nothing past them.
/// </summary>
public sealed class KvCopyTests
{
    [Fact]
    public void KvBuffers_CopyTokens_copiesTheFirstTokensOfEveryHeadOfTheSlotAndNothingElse()
    {
        using var memory = new HostKvMemory();
        using var kv = new KvBuffers(memory, numLayers: 2, numSlots: 3, numKvHeads: 2, maxLength: 5, headSize: 3, TensorElementType.Float);
        var views = Enumerable.Range(0, 2).SelectMany(l => new[] { kv.KeyView(l, 0, 3), kv.ValueView(l, 0, 3) }).ToList();
        for (var v = 0; v < views.Count; v++)
        {
            var data = views[v].GetTensorMutableDataAsSpan<float>();
            for (var i = 0; i < data.Length; i++) data[i] = 1000 * v + i + 1;
        }
        var before = views.Select(v => v.GetTensorDataAsSpan<float>().ToArray()).ToList();

        kv.CopyTokens(fromSlot: 0, toSlot: 2, numTokens: 4);

        for (var v = 0; v < views.Count; v++)
        {
            var after = views[v].GetTensorDataAsSpan<float>();
            // [slot, head, position, element]
            for (var slot = 0; slot < 3; slot++)
            for (var head = 0; head < 2; head++)
            for (var position = 0; position < 5; position++)
            for (var element = 0; element < 3; element++)
            {
                var at = ((slot * 2 + head) * 5 + position) * 3 + element;
                var copied = slot == 2 && position < 4;
                var expected = copied ? before[v][((0 * 2 + head) * 5 + position) * 3 + element] : before[v][at];
                Assert.Equal(expected, after[at]);
            }
        }
        views.ForEach(v => v.Dispose());
    }

    /// <summary>float32, and the int8 of a quantized cache (export.py --kv-cache int8: one byte an element).</summary>
    [Theory]
    [InlineData(TensorElementType.Float)]
    [InlineData(TensorElementType.Int8)]
    public void PagedKvCache_CopyRows_copiesTheFirstRowsOfTheBlockInEveryLayerAndNothingElse(TensorElementType elementType)
    {
        using var memory = new HostKvMemory();
        using var cache = new PagedKvCache(memory, numLayers: 2, numBlocks: 3, blockSize: 4, numKvHeads: 2, headSize: 3, elementType);
        var tensors = Enumerable.Range(0, 2).SelectMany(l => new[] { cache.Keys(l), cache.Values(l) }).ToList();
        const int rowElements = 2 * 3;
        Assert.Equal(4 * rowElements * (elementType == TensorElementType.Int8 ? 1 : 4), cache.BlockLayerBytes);
        for (var t = 0; t < tensors.Count; t++)
        {
            var data = Bytes(tensors[t]);
            for (var i = 0; i < data.Length; i++) data[i] = (byte)(31 * t + i + 1);
        }
        var before = tensors.Select(t => Bytes(t).ToArray()).ToList();

        cache.CopyRows(fromBlock: 1, toBlock: 0, numRows: 3);

        var rowBytes = (int)cache.BlockLayerBytes / 4;
        for (var t = 0; t < tensors.Count; t++)
        {
            var after = Bytes(tensors[t]);
            for (var i = 0; i < after.Length; i++)
            {
                var (block, row) = (i / (4 * rowBytes), i / rowBytes % 4);
                var expected = block == 0 && row < 3 ? before[t][i + 4 * rowBytes] : before[t][i];
                Assert.Equal(expected, after[i]);
            }
        }
    }

    /// <summary>Swapping to host memory (<see cref="KvSwapTests"/>): a block's rows out to a host block and back into another block.</summary>
    [Theory]
    [InlineData(TensorElementType.Float)]
    [InlineData(TensorElementType.Int8)]
    public void PagedKvCache_swapOutThenIn_bringsTheRowsBackIntoAnotherBlockInEveryLayer(TensorElementType elementType)
    {
        using var memory = new HostKvMemory();
        using var cache = new PagedKvCache(memory, numLayers: 2, numBlocks: 3, blockSize: 4, numKvHeads: 2, headSize: 3, elementType, numSwapBlocks: 2);
        var tensors = Enumerable.Range(0, 2).SelectMany(l => new[] { cache.Keys(l), cache.Values(l) }).ToList();
        for (var t = 0; t < tensors.Count; t++)
        {
            var data = Bytes(tensors[t]);
            for (var i = 0; i < data.Length; i++) data[i] = (byte)(29 * t + i + 1);
        }
        var before = tensors.Select(t => Bytes(t).ToArray()).ToList();
        var rowBytes = (int)cache.BlockLayerBytes / 4;

        cache.SwapOut(block: 1, hostBlock: 1, numRows: 3);
        foreach (var tensor in tensors) Bytes(tensor).Clear(); // another request writes over the device blocks
        cache.SwapIn(hostBlock: 1, block: 2, numRows: 3);

        for (var t = 0; t < tensors.Count; t++)
        {
            var after = Bytes(tensors[t]);
            for (var i = 0; i < after.Length; i++)
            {
                var (block, row) = (i / (4 * rowBytes), i / rowBytes % 4);
                var expected = block == 2 && row < 3 ? before[t][i - 4 * rowBytes] : (byte)0;
                Assert.Equal(expected, after[i]);
            }
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.SwapOut(block: 0, hostBlock: 2, numRows: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.SwapIn(hostBlock: 0, block: 0, numRows: 5));
    }

    /// <summary>A cache tensor's bytes, whatever its element type.</summary>
    private static Span<byte> Bytes(OrtValue tensor) =>
        tensor.GetTensorTypeAndShape().ElementDataType == TensorElementType.Int8
            ? System.Runtime.InteropServices.MemoryMarshal.AsBytes(tensor.GetTensorMutableDataAsSpan<sbyte>())
            : System.Runtime.InteropServices.MemoryMarshal.AsBytes(tensor.GetTensorMutableDataAsSpan<float>());

    [Fact]
    public void Copies_toTheSameUnitOrPastItsLength_throwNamingTheValues()
    {
        using var memory = new HostKvMemory();
        using var kv = new KvBuffers(memory, numLayers: 1, numSlots: 2, numKvHeads: 1, maxLength: 4, headSize: 2, TensorElementType.Float);
        using var cache = new PagedKvCache(memory, numLayers: 1, numBlocks: 2, blockSize: 4, numKvHeads: 1, headSize: 2, TensorElementType.Float);

        Assert.Contains("slot 1 to slot 1", Assert.Throws<ArgumentOutOfRangeException>(() => kv.CopyTokens(1, 1, 2)).Message);
        Assert.Contains("a slot holds 4 tokens", Assert.Throws<ArgumentOutOfRangeException>(() => kv.CopyTokens(0, 1, 5)).Message);
        Assert.Contains("block 0 to block 2", Assert.Throws<ArgumentOutOfRangeException>(() => cache.CopyRows(0, 2, 1)).Message);
        Assert.Contains("a block holds 4 tokens", Assert.Throws<ArgumentOutOfRangeException>(() => cache.CopyRows(0, 1, 5)).Message);
    }
}

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// The free list of KV blocks (PagedAttention: <c>[numBlocks, blockSize, kvHeads, headSize]</c> per layer). Hands out the
/// lowest free ids, so a run is reproducible block id for block id. Running out is an expected answer
/// (<see cref="TryAllocate"/> → false); freeing a block that is not allocated is a broken invariant and throws.
/// </summary>
internal sealed class BlockPool
{
    private readonly SortedSet<int> _free;

    public BlockPool(int numBlocks)
    {
        if (numBlocks < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(numBlocks), numBlocks, "a block pool needs at least one block");
        }
        NumBlocks = numBlocks;
        _free = new SortedSet<int>(Enumerable.Range(0, numBlocks));
    }

    public int NumBlocks { get; }

    public int NumFree => _free.Count;

    public int NumUsed => NumBlocks - _free.Count;

    /// <summary>Appends <paramref name="count"/> free block ids to <paramref name="blocks"/>: all of them, or none and false.</summary>
    public bool TryAllocate(int count, List<int> blocks)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > _free.Count)
        {
            return false;
        }
        for (var i = 0; i < count; i++)
        {
            var block = _free.Min;
            _free.Remove(block);
            blocks.Add(block);
        }
        return true;
    }

    public void Free(int block)
    {
        if (block < 0 || block >= NumBlocks || !_free.Add(block))
        {
            throw new InvalidOperationException($"block {block} is not allocated (blocks: {NumBlocks}, free: {_free.Count})");
        }
    }
}

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// The free list of KV blocks (PagedAttention: <c>[numBlocks, blockSize, kvHeads, headSize]</c> per layer). Hands out the
/// lowest free ids, so a run is reproducible block id for block id. A block may be held by several block tables at once
/// (<see cref="Share"/>: forked choices of one prompt hold its whole blocks); it is free again when the last lets go.
/// Running out is an expected answer (<see cref="TryAllocate"/> → false); freeing a block that is not allocated is a
/// broken invariant and throws.
/// </summary>
internal sealed class BlockPool
{
    private readonly SortedSet<int> _free;
    private readonly int[] _holders; // tables holding each block; 0: free

    public BlockPool(int numBlocks)
    {
        if (numBlocks < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(numBlocks), numBlocks, "a block pool needs at least one block");
        }
        NumBlocks = numBlocks;
        _free = new SortedSet<int>(Enumerable.Range(0, numBlocks));
        _holders = new int[numBlocks];
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
            _holders[block] = 1;
            blocks.Add(block);
        }
        return true;
    }

    /// <summary>Tables holding <paramref name="block"/> (0: free).</summary>
    public int HoldersOf(int block) => _holders[block];

    /// <summary>One more table holds the allocated <paramref name="block"/>.</summary>
    public void Share(int block)
    {
        ThrowUnlessAllocated(block);
        _holders[block]++;
    }

    /// <summary>One table lets go of <paramref name="block"/>; the last one frees it.</summary>
    public void Free(int block)
    {
        ThrowUnlessAllocated(block);
        if (--_holders[block] == 0)
        {
            _free.Add(block);
        }
    }

    private void ThrowUnlessAllocated(int block)
    {
        if (block < 0 || block >= NumBlocks || _holders[block] == 0)
        {
            throw new InvalidOperationException($"block {block} is not allocated (blocks: {NumBlocks}, free: {_free.Count})");
        }
    }
}

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// The free list of KV blocks (PagedAttention: <c>[numBlocks, blockSize, kvHeads, headSize]</c> per layer), and the
/// prefix cache over them. A block may be held by several block tables at once (<see cref="Share"/>: forked choices of
/// one prompt, requests of one prefix); it is free again when the last lets go. A whole, computed block may be
/// registered under its <see cref="PrefixBlockKey"/> (<see cref="Register"/>): when its last holder lets go it stays
/// cached and evictable, and a request that finds its key takes it back (<see cref="TryGetCached"/>, then
/// <see cref="Share"/>). Allocation hands out the lowest plain free id first, so a run is reproducible block id for
/// block id, then evicts cached blocks, the least recently let go first. Evictable blocks count as free.
/// Running out is an expected answer (<see cref="TryAllocate"/> → false); freeing a block that is not allocated is a
/// broken invariant and throws.
/// </summary>
internal sealed class BlockPool
{
    private readonly SortedSet<int> _free;                       // no holder, nothing cached
    private readonly LinkedList<int> _evictable = [];            // no holder, cached: least recently let go first
    private readonly LinkedListNode<int>?[] _evictableNodes;     // [numBlocks]: block b's place in _evictable
    private readonly int[] _holders;                             // [numBlocks]: tables holding each block; 0: free
    private readonly PrefixBlockKey?[] _blockToKey;              // [numBlocks]: what each cached block holds
    private readonly Dictionary<PrefixBlockKey, int> _keyToBlock = [];

    public BlockPool(int numBlocks)
    {
        if (numBlocks < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(numBlocks), numBlocks, "a block pool needs at least one block");
        }
        NumBlocks = numBlocks;
        _free = new SortedSet<int>(Enumerable.Range(0, numBlocks));
        _evictableNodes = new LinkedListNode<int>?[numBlocks];
        _holders = new int[numBlocks];
        _blockToKey = new PrefixBlockKey?[numBlocks];
    }

    public int NumBlocks { get; }

    /// <summary>Blocks no table holds: plain free ones and cached ones allocation may evict.</summary>
    public int NumFree => _free.Count + _evictable.Count;

    public int NumUsed => NumBlocks - NumFree;

    /// <summary>Blocks registered in the prefix cache, held or evictable.</summary>
    public int NumCached => _keyToBlock.Count;

    /// <summary>Cached blocks no table held, whose keys allocation dropped to hand them out again.</summary>
    public long NumEvictions { get; private set; }

    /// <summary>
    /// Appends <paramref name="count"/> block ids to <paramref name="blocks"/>, plain free ones first (lowest first), then
    /// evicted ones (least recently let go first): all of them, or none and false.
    /// </summary>
    public bool TryAllocate(int count, List<int> blocks)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > NumFree)
        {
            return false;
        }
        for (var i = 0; i < count; i++)
        {
            int block;
            if (_free.Count > 0)
            {
                block = _free.Min;
                _free.Remove(block);
            }
            else
            {
                block = _evictable.First!.Value;
                Uncache(block);
                NumEvictions++;
            }
            _holders[block] = 1;
            blocks.Add(block);
        }
        return true;
    }

    /// <summary>Tables holding <paramref name="block"/> (0: free or evictable).</summary>
    public int HoldersOf(int block) => _holders[block];

    /// <summary>The key <paramref name="block"/> is cached under; null when it is not cached.</summary>
    public PrefixBlockKey? KeyOf(int block) => _blockToKey[block];

    /// <summary>One more table holds <paramref name="block"/>: an allocated one, or a cached one no table holds (no longer evictable).</summary>
    public void Share(int block)
    {
        if (block >= 0 && block < NumBlocks && _evictableNodes[block] is { } node)
        {
            _evictable.Remove(node);
            _evictableNodes[block] = null;
        }
        else
        {
            ThrowUnlessAllocated(block);
        }
        _holders[block]++;
    }

    /// <summary>One table lets go of <paramref name="block"/>; the last one frees it, or leaves it evictable when it is cached.</summary>
    public void Free(int block)
    {
        ThrowUnlessAllocated(block);
        if (--_holders[block] > 0)
        {
            return;
        }
        if (_blockToKey[block] is null)
        {
            _free.Add(block);
        }
        else
        {
            _evictableNodes[block] = _evictable.AddLast(block);
        }
    }

    /// <summary>
    /// The cached block holding what <paramref name="key"/> names, and the pool's own key for it (the one the next block's
    /// key chains on), held or evictable; false when none is cached.
    /// </summary>
    public bool TryGetCached(PrefixBlockKey key, out int block, out PrefixBlockKey cachedKey)
    {
        if (_keyToBlock.TryGetValue(key, out block))
        {
            cachedKey = _blockToKey[block]!;
            return true;
        }
        cachedKey = key;
        return false;
    }

    /// <summary>
    /// Caches the held <paramref name="block"/>, whose every token is computed, under <paramref name="key"/>, and returns
    /// the pool's key for what it holds: <paramref name="key"/>, or the key of another block already cached with the same
    /// content (then this one stays uncached, its holders' own copy).
    /// </summary>
    public PrefixBlockKey Register(int block, PrefixBlockKey key)
    {
        ThrowUnlessAllocated(block);
        if (_blockToKey[block] is { } registered)
        {
            return registered.Equals(key)
                ? registered
                : throw new InvalidOperationException($"block {block} is cached with other tokens than the ones registered for it now");
        }
        if (_keyToBlock.TryGetValue(key, out var other))
        {
            return _blockToKey[other]!;
        }
        _keyToBlock.Add(key, block);
        _blockToKey[block] = key;
        return key;
    }

    private void Uncache(int block)
    {
        _evictable.Remove(_evictableNodes[block]!);
        _evictableNodes[block] = null;
        _keyToBlock.Remove(_blockToKey[block]!);
        _blockToKey[block] = null;
    }

    private void ThrowUnlessAllocated(int block)
    {
        if (block < 0 || block >= NumBlocks || _holders[block] == 0)
        {
            throw new InvalidOperationException($"block {block} is not allocated (blocks: {NumBlocks}, free: {NumFree})");
        }
    }
}

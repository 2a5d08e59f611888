using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// The KV cache manager of the paged graph: each running request's block table (its block ids in position order:
/// token p lives in block <c>table[p / BlockSize]</c> at row <c>p % BlockSize</c>) over one <see cref="BlockPool"/>.
/// Tables grow a block at a time as requests are scheduled and go back whole when a request ends or is preempted.
/// A fork (n choices of one prompt) shares the parent's whole blocks — positions before a sequence's computed tokens are
/// never written again — and copies only its last, partly filled block: copy on write, done once at the fork.
/// The pool holds at least one request of <see cref="MaxLength"/> tokens, so the oldest running request can always grow.
/// With the prefix cache on (<see cref="CachesPrefixes"/>), each whole block of a sequence's computed tokens is cached
/// under its <see cref="PrefixBlockKey"/> once all its tokens are computed (<see cref="CacheComputed"/>), and a request
/// admitted later takes the longest run of cached whole blocks of its prompt, shared, instead of computing them
/// (<see cref="TakeCachedPrefix"/>): vLLM's automatic prefix caching.
/// With host blocks (<c>numSwapBlocks</c>), a preempted request's KV can be swapped out to them (<see cref="TrySwapOut"/>)
/// and back into new device blocks when it resumes (<see cref="TrySwapIn"/>), instead of being recomputed.
/// </summary>
internal sealed class BlockTables : IKvCacheManager
{
    private readonly BlockPool _pool;
    private readonly Dictionary<long, List<int>> _sequenceToBlocks = [];
    private readonly Dictionary<long, List<PrefixBlockKey>> _sequenceToKeys = []; // the cache's keys of a table's first whole computed blocks
    private readonly Stack<int> _freeSwapBlocks = new();
    private readonly Dictionary<long, (List<int> HostBlocks, int NumTokens)> _swappedOut = [];

    /// <param name="cachesPrefixes">Whole computed blocks are cached and shared by requests of the same prefix (<see cref="EngineOptions.PrefixCache"/>).</param>
    /// <param name="numSwapBlocks">Host blocks for swapped-out requests (<see cref="IStepRunner.NumSwapBlocks"/>); 0: preemption recomputes.</param>
    public BlockTables(int numBlocks, int blockSize, int maxLength, bool cachesPrefixes = false, int numSwapBlocks = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numSwapBlocks);
        if (blockSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "must be at least 1");
        }
        _pool = new BlockPool(numBlocks);
        BlockSize = blockSize;
        MaxLength = maxLength;
        CachesPrefixes = cachesPrefixes;
        NumSwapBlocks = numSwapBlocks;
        for (var block = numSwapBlocks - 1; block >= 0; block--)
        {
            _freeSwapBlocks.Push(block);
        }
        if (NumBlocksFor(maxLength) > numBlocks)
        {
            throw new ArgumentOutOfRangeException(nameof(numBlocks), numBlocks,
                $"{numBlocks} blocks of {blockSize} tokens hold fewer than one request of {maxLength} tokens; use more KV blocks or a shorter maximum sequence length");
        }
    }

    public int BlockSize { get; }

    public int NumBlocks => _pool.NumBlocks;

    public int NumFreeBlocks => _pool.NumFree;

    /// <summary>Longest request a table holds.</summary>
    public int MaxLength { get; }

    public KvCacheUsage Usage => new(KvUnit.Block, _pool.NumBlocks, BlockSize, _pool.NumUsed);

    /// <summary>Whole computed blocks are cached for requests of the same prefix.</summary>
    public bool CachesPrefixes { get; }

    /// <summary>Blocks in the prefix cache, held or evictable.</summary>
    public int NumCachedBlocks => _pool.NumCached;

    public long NumEvictedBlocks => _pool.NumEvictions;

    /// <summary>Tables holding <paramref name="block"/> (0: free or evictable).</summary>
    public int HoldersOf(int block) => _pool.HoldersOf(block);

    /// <summary>Blocks that hold <paramref name="numTokens"/> tokens.</summary>
    public int NumBlocksFor(int numTokens) => (numTokens + BlockSize - 1) / BlockSize;

    public int NumFreeUnits => _pool.NumFree;

    /// <summary>Host blocks for swapped-out requests.</summary>
    public int NumSwapBlocks { get; }

    /// <summary>Host blocks no swapped-out request holds.</summary>
    public int NumFreeSwapBlocks => _freeSwapBlocks.Count;

    /// <summary>Whether <paramref name="sequenceId"/>'s KV is in host blocks, waiting for <see cref="TrySwapIn"/>.</summary>
    public bool IsSwappedOut(long sequenceId) => _swappedOut.ContainsKey(sequenceId);

    /// <summary>
    /// Copies the blocks of <paramref name="sequenceId"/>'s first <paramref name="numTokens"/> tokens (the rows they fill)
    /// into free host blocks and gives every block of its table back (<see cref="Free"/>'s order: cached ones stay cached).
    /// </summary>
    public bool TrySwapOut(long sequenceId, int numTokens, out ImmutableArray<KvUnitCopy> copies)
    {
        copies = [];
        if (!_sequenceToBlocks.TryGetValue(sequenceId, out var blocks) || numTokens < 1)
        {
            return false;
        }
        var numBlocks = NumBlocksFor(numTokens);
        if (numBlocks > blocks.Count)
        {
            throw new InvalidOperationException($"sequence {sequenceId} holds {blocks.Count} KV blocks; {numTokens} tokens need {numBlocks}");
        }
        if (numBlocks > _freeSwapBlocks.Count)
        {
            return false;
        }
        var hostBlocks = new List<int>(numBlocks);
        var builder = ImmutableArray.CreateBuilder<KvUnitCopy>(numBlocks);
        for (var i = 0; i < numBlocks; i++)
        {
            var host = _freeSwapBlocks.Pop();
            hostBlocks.Add(host);
            builder.Add(new KvUnitCopy(blocks[i], host, Math.Min(BlockSize, numTokens - i * BlockSize)));
        }
        Free(sequenceId);
        _swappedOut[sequenceId] = (hostBlocks, numTokens);
        copies = builder.MoveToImmutable();
        return true;
    }

    /// <summary>
    /// A new table for <paramref name="numTokens"/> tokens (at least the swapped ones), the swapped blocks' rows copied
    /// into its first blocks, the host blocks freed.
    /// </summary>
    public bool TrySwapIn(long sequenceId, int numTokens, out ImmutableArray<KvUnitCopy> copies)
    {
        copies = [];
        if (!_swappedOut.TryGetValue(sequenceId, out var swapped))
        {
            throw new InvalidOperationException($"sequence {sequenceId} is not swapped out");
        }
        if (numTokens < swapped.NumTokens)
        {
            throw new InvalidOperationException($"sequence {sequenceId} swapped {swapped.NumTokens} tokens out; {numTokens} cannot hold them");
        }
        if (!TryReserve(sequenceId, numTokens))
        {
            return false;
        }
        var blocks = _sequenceToBlocks[sequenceId];
        var builder = ImmutableArray.CreateBuilder<KvUnitCopy>(swapped.HostBlocks.Count);
        for (var i = 0; i < swapped.HostBlocks.Count; i++)
        {
            builder.Add(new KvUnitCopy(swapped.HostBlocks[i], blocks[i], Math.Min(BlockSize, swapped.NumTokens - i * BlockSize)));
        }
        ReleaseSwapped(sequenceId);
        copies = builder.MoveToImmutable();
        return true;
    }

    private void ReleaseSwapped(long sequenceId)
    {
        if (_swappedOut.Remove(sequenceId, out var swapped))
        {
            foreach (var host in swapped.HostBlocks)
            {
                _freeSwapBlocks.Push(host);
            }
        }
    }

    /// <summary>Blocks that hold <paramref name="numTokens"/> tokens (at most <see cref="MaxLength"/>) less those the table holds.</summary>
    public int UnitsToGrow(long sequenceId, int numTokens)
    {
        var held = _sequenceToBlocks.TryGetValue(sequenceId, out var blocks) ? blocks.Count : 0;
        return Math.Max(0, NumBlocksFor(Math.Clamp(numTokens, 0, MaxLength)) - held);
    }

    /// <summary>
    /// Grows <paramref name="sequenceId"/>'s table (created on first use) to hold <paramref name="numTokens"/> tokens.
    /// False, and the table unchanged, when the pool lacks the blocks.
    /// </summary>
    public bool TryReserve(long sequenceId, int numTokens)
    {
        if (numTokens < 0 || numTokens > MaxLength)
        {
            throw new InvalidOperationException($"sequence {sequenceId}: {numTokens} tokens exceed the maximum length {MaxLength}");
        }
        if (!_sequenceToBlocks.TryGetValue(sequenceId, out var blocks))
        {
            blocks = [];
            _sequenceToBlocks[sequenceId] = blocks;
        }
        var missing = NumBlocksFor(numTokens) - blocks.Count;
        if (missing <= 0 || _pool.TryAllocate(missing, blocks))
        {
            return true;
        }
        if (blocks.Count == 0)
        {
            _sequenceToBlocks.Remove(sequenceId);
        }
        return false;
    }

    /// <summary>
    /// The child's table: the parent's whole blocks of its first <paramref name="numTokens"/> tokens, shared, and a new
    /// block for the rest of them (copied by the runner), if they end inside a block.
    /// </summary>
    public bool TryFork(long parentId, long childId, int numTokens, [NotNullWhen(true)] out KvFork? fork)
    {
        fork = null;
        if (!_sequenceToBlocks.TryGetValue(parentId, out var parent) || NumBlocksFor(numTokens) > parent.Count)
        {
            throw new InvalidOperationException($"sequence {parentId} holds {parent?.Count ?? 0} KV blocks; a fork of {numTokens} tokens needs {NumBlocksFor(numTokens)}");
        }
        if (_sequenceToBlocks.ContainsKey(childId))
        {
            throw new InvalidOperationException($"sequence {childId} already holds KV blocks; a fork makes a new table");
        }
        var whole = numTokens / BlockSize;
        var rest = numTokens % BlockSize;
        var child = new List<int>(whole + 1);
        if (rest > 0 && !_pool.TryAllocate(1, child))
        {
            return false;
        }
        child.InsertRange(0, parent.Take(whole));
        foreach (var block in parent.Take(whole))
        {
            _pool.Share(block);
        }
        _sequenceToBlocks[childId] = child;
        if (_sequenceToKeys.TryGetValue(parentId, out var parentKeys))
        {
            _sequenceToKeys[childId] = [.. parentKeys.Take(whole)];
        }
        fork = new KvFork(parentId, childId, numTokens, rest > 0 ? [new KvUnitCopy(parent[whole], child[whole], rest)] : []);
        return true;
    }

    /// <summary>The table of <paramref name="sequenceId"/>; empty when it holds no blocks.</summary>
    public ImmutableArray<int> BlocksOf(long sequenceId) =>
        _sequenceToBlocks.TryGetValue(sequenceId, out var blocks) ? [.. blocks] : [];

    public KvPlace PlaceOf(long sequenceId) =>
        _sequenceToBlocks.TryGetValue(sequenceId, out var blocks)
            ? new KvBlockTable([.. blocks])
            : throw new InvalidOperationException($"sequence {sequenceId} holds no KV blocks ({_pool.NumUsed} of {NumBlocks} held)");

    /// <summary>
    /// Gives every block of <paramref name="sequenceId"/> back to the pool (nothing when it holds none), its last block
    /// first: cached ones stay evictable, and the end of a prefix goes before its start. A swapped-out sequence's host
    /// blocks go back too.
    /// </summary>
    public void Free(long sequenceId)
    {
        ReleaseSwapped(sequenceId);
        _sequenceToKeys.Remove(sequenceId);
        if (!_sequenceToBlocks.Remove(sequenceId, out var blocks))
        {
            return;
        }
        for (var i = blocks.Count - 1; i >= 0; i--)
        {
            _pool.Free(blocks[i]);
        }
    }

    /// <summary>
    /// Gives <paramref name="sequence"/>, holding no blocks, the longest run of cached whole blocks of the tokens it is to
    /// prefill, shared, and returns the tokens they hold: at most all but its last token's block, so its last token is
    /// computed and the step has its logits. 0 when none is cached or the prefix cache is off.
    /// </summary>
    public int TakeCachedPrefix(Sequence sequence)
    {
        if (!CachesPrefixes)
        {
            return 0;
        }
        if (_sequenceToBlocks.ContainsKey(sequence.SequenceId))
        {
            throw new InvalidOperationException($"sequence {sequence.SequenceId} already holds KV blocks; a cached prefix starts a table");
        }
        var maxBlocks = (sequence.NumPrefillTokens - 1) / BlockSize;
        var blocks = new List<int>();
        var keys = new List<PrefixBlockKey>();
        while (blocks.Count < maxBlocks
            && _pool.TryGetCached(new PrefixBlockKey(keys.Count == 0 ? null : keys[^1], sequence.Tokens(blocks.Count * BlockSize, BlockSize)), out var block, out var key))
        {
            _pool.Share(block);
            blocks.Add(block);
            keys.Add(key);
        }
        if (blocks.Count > 0)
        {
            _sequenceToBlocks[sequence.SequenceId] = blocks;
            _sequenceToKeys[sequence.SequenceId] = keys;
        }
        return blocks.Count * BlockSize;
    }

    /// <summary>
    /// Caches the whole blocks of <paramref name="sequence"/>'s computed tokens not cached yet (nothing when the prefix
    /// cache is off): call it once its <see cref="Sequence.NumComputed"/> counts a step's tokens. A block whose content
    /// another block already holds stays the sequence's own.
    /// </summary>
    public void CacheComputed(Sequence sequence)
    {
        if (!CachesPrefixes || !_sequenceToBlocks.TryGetValue(sequence.SequenceId, out var blocks))
        {
            return;
        }
        var numWhole = sequence.NumComputed / BlockSize;
        if (numWhole > blocks.Count)
        {
            throw new InvalidOperationException($"sequence {sequence.SequenceId} computed {sequence.NumComputed} tokens in {blocks.Count} blocks of {BlockSize}");
        }
        if (!_sequenceToKeys.TryGetValue(sequence.SequenceId, out var keys))
        {
            keys = [];
            _sequenceToKeys[sequence.SequenceId] = keys;
        }
        for (var i = keys.Count; i < numWhole; i++)
        {
            keys.Add(_pool.Register(blocks[i], new PrefixBlockKey(i == 0 ? null : keys[i - 1], sequence.Tokens(i * BlockSize, BlockSize))));
        }
    }
}

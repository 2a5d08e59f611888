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
/// </summary>
internal sealed class BlockTables : IKvCacheManager
{
    private readonly BlockPool _pool;
    private readonly Dictionary<long, List<int>> _sequenceToBlocks = [];

    public BlockTables(int numBlocks, int blockSize, int maxLength)
    {
        if (blockSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "must be at least 1");
        }
        _pool = new BlockPool(numBlocks);
        BlockSize = blockSize;
        MaxLength = maxLength;
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

    /// <summary>Blocks that hold <paramref name="numTokens"/> tokens.</summary>
    public int NumBlocksFor(int numTokens) => (numTokens + BlockSize - 1) / BlockSize;

    public int NumFreeUnits => _pool.NumFree;

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

    /// <summary>Gives every block of <paramref name="sequenceId"/> back to the pool (nothing when it holds none).</summary>
    public void Free(long sequenceId)
    {
        if (!_sequenceToBlocks.Remove(sequenceId, out var blocks))
        {
            return;
        }
        foreach (var block in blocks)
        {
            _pool.Free(block);
        }
    }
}

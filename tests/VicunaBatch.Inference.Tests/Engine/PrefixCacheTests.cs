using VicunaBatch.Inference.Engine;
using static VicunaBatch.Inference.Tests.Engine.SchedulerSteps;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// The prefix cache of the KV cache manager of blocks (<see cref="BlockTables"/> over <see cref="BlockPool"/>), 4-token
/// blocks: which whole blocks a request takes at admission, when a block is cached, and which cached block goes first.
/// </summary>
public sealed class PrefixCacheTests
{
    private static readonly int[] Template = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    [Fact]
    public void TakeCachedPrefix_promptsSharingTwoWholeBlocks_theSecondHoldsTheFirstsBlocksShared()
    {
        var tables = new BlockTables(numBlocks: 8, blockSize: 4, maxLength: 32, cachesPrefixes: true);
        var first = Computed(tables, SequenceOf(1, [.. Template[..10]]), 10); // blocks 0 1 whole, 2 holding 2 tokens

        var second = SequenceOf(2, [.. Template[..8], 90, 91, 92]);

        Assert.Equal(8, tables.TakeCachedPrefix(second));
        Assert.Equal([0, 1], tables.BlocksOf(2).ToArray());
        Assert.True(tables.TryReserve(2, 11));
        Assert.Equal([0, 1, 3], tables.BlocksOf(2).ToArray());
        Assert.Equal((2, 2, 1, 1), (tables.HoldersOf(0), tables.HoldersOf(1), tables.HoldersOf(2), tables.HoldersOf(3)));
        Assert.Equal(4, tables.Usage.NumInUse);
        Assert.Equal(10, first.NumComputed);
    }

    [Theory]
    [InlineData(10, 8)] // the first's third block holds 2 tokens: not cached, so not shared
    [InlineData(9, 8)]  // the prompt ends in that block
    [InlineData(8, 4)]  // the whole prompt is cached: its last block is computed again, for the step's logits
    [InlineData(4, 0)]
    [InlineData(1, 0)]
    public void TakeCachedPrefix_onlyWholeBlocksAndNeverTheLastToken(int promptLength, int expectedTokens)
    {
        var tables = new BlockTables(numBlocks: 8, blockSize: 4, maxLength: 32, cachesPrefixes: true);
        Computed(tables, SequenceOf(1, [.. Template[..10], 70, 71]), 10);

        var taken = tables.TakeCachedPrefix(SequenceOf(2, Template[..promptLength]));

        Assert.Equal(expectedTokens, taken);
        Assert.Equal(expectedTokens / 4, tables.BlocksOf(2).Length);
    }

    [Fact]
    public void TakeCachedPrefix_aCachedBlockOfTheSameTokensAfterAnotherBlock_isNotTaken()
    {
        var tables = new BlockTables(numBlocks: 8, blockSize: 4, maxLength: 32, cachesPrefixes: true);
        Computed(tables, SequenceOf(1, [1, 2, 3, 4, 9, 9, 9, 9]), 8);
        Computed(tables, SequenceOf(2, [5, 6, 7, 8, 0, 0, 0, 0]), 8);

        Assert.Equal(4, tables.TakeCachedPrefix(SequenceOf(3, [5, 6, 7, 8, 9, 9, 9, 9, 1])));
        Assert.Equal([2], tables.BlocksOf(3).ToArray());
    }

    [Fact]
    public void CacheComputed_blockNotYetFullyComputed_isNotCachedUntilItIs()
    {
        var tables = new BlockTables(numBlocks: 8, blockSize: 4, maxLength: 32, cachesPrefixes: true);
        var first = SequenceOf(1, [.. Template, 13]);
        Assert.True(tables.TryReserve(1, 13)); // blocks for the whole prompt, as a prefill chunk of it is scheduled
        tables.CacheComputed(first);           // nothing computed yet
        Assert.Equal(0, tables.NumCachedBlocks);

        first.NumComputed = 7; // the first chunk: block 0 whole, block 1 holding 3 tokens
        tables.CacheComputed(first);

        Assert.Equal(1, tables.NumCachedBlocks);
        Assert.Equal(4, tables.TakeCachedPrefix(SequenceOf(2, [.. Template, 14])));
        first.NumComputed = 13;
        tables.CacheComputed(first);
        Assert.Equal(3, tables.NumCachedBlocks);
        Assert.Equal(12, tables.TakeCachedPrefix(SequenceOf(3, [.. Template, 15])));
        Assert.Equal([0, 1, 2], tables.BlocksOf(3).ToArray());
    }

    [Fact]
    public void Free_cachedBlocksStayCachedAndCountAsFreeUntilThePoolEvictsTheLeastRecentlyUsedEndOfAPrefixFirst()
    {
        var tables = new BlockTables(numBlocks: 6, blockSize: 4, maxLength: 24, cachesPrefixes: true);
        Computed(tables, SequenceOf(1, Template[..8]), 8);                      // blocks 0 1
        Computed(tables, SequenceOf(2, [20, 21, 22, 23, 24, 25, 26, 27]), 8);   // blocks 2 3
        tables.Free(1); // evictable, least recently used first: 1 0 (a table lets go of its last block first)
        tables.Free(2); // then 3 2

        Assert.Equal((6, 0, 4), (tables.NumFreeBlocks, tables.Usage.NumInUse, tables.NumCachedBlocks));
        Assert.True(tables.TryReserve(3, 12)); // the plain free blocks 4 5 first, then the first's last block

        Assert.Equal([4, 5, 1], tables.BlocksOf(3).ToArray());
        Assert.Equal((1L, 3), (tables.NumEvictedBlocks, tables.NumCachedBlocks));
        Assert.Equal(4, tables.TakeCachedPrefix(SequenceOf(4, [.. Template[..8], 9])));      // block 0 only
        Assert.Equal(8, tables.TakeCachedPrefix(SequenceOf(5, [20, 21, 22, 23, 24, 25, 26, 27, 28])));
        Assert.Equal([0], tables.BlocksOf(4).ToArray());
        Assert.Equal([2, 3], tables.BlocksOf(5).ToArray());
        Assert.Equal((0, 6), (tables.NumFreeBlocks, tables.Usage.NumInUse)); // taken back: no longer evictable
        Assert.False(tables.TryReserve(4, 9));
    }

    [Fact]
    public void TakeCachedPrefix_takingABlockBackMakesItTheMostRecentlyUsed()
    {
        var tables = new BlockTables(numBlocks: 4, blockSize: 4, maxLength: 16, cachesPrefixes: true);
        Computed(tables, SequenceOf(1, [1, 2, 3, 4]), 4);     // block 0
        Computed(tables, SequenceOf(2, [5, 6, 7, 8]), 4);     // block 1
        tables.Free(1);
        tables.Free(2); // evictable: 0 1
        var again = SequenceOf(3, [1, 2, 3, 4, 40]);
        Assert.Equal(4, tables.TakeCachedPrefix(again));
        tables.Free(3); // evictable: 1 0

        Assert.True(tables.TryReserve(4, 12));

        Assert.Equal([2, 3, 1], tables.BlocksOf(4).ToArray());
        Assert.Equal(4, tables.TakeCachedPrefix(SequenceOf(5, [1, 2, 3, 4, 50])));
    }

    [Fact]
    public void CacheComputed_samePromptComputedTwice_keepsOneCachedBlockAndTheOtherStaysItsOwnersCopy()
    {
        var tables = new BlockTables(numBlocks: 8, blockSize: 4, maxLength: 32, cachesPrefixes: true);
        Computed(tables, SequenceOf(1, [.. Template[..9]]), 9);  // blocks 0 1 2: admitted in the same step, neither found the other's
        Computed(tables, SequenceOf(2, [.. Template[..9]]), 9);  // blocks 3 4 5

        Assert.Equal(2, tables.NumCachedBlocks);
        tables.Free(1);
        tables.Free(2);

        Assert.Equal(8, tables.TakeCachedPrefix(SequenceOf(3, [.. Template[..9]])));
        Assert.Equal([0, 1], tables.BlocksOf(3).ToArray());
        Assert.True(tables.TryReserve(6, 4 * 6)); // the 6 plain free blocks, the second's copies among them: nothing evicted
        Assert.Equal([2, 3, 4, 5, 6, 7], tables.BlocksOf(6).ToArray());
        Assert.Equal(0, tables.NumEvictedBlocks);
    }

    [Fact]
    public void TryFork_ofACachedPrefix_sharesItAndTheChildsOwnWholeBlocksAreCachedAfterIt()
    {
        var tables = new BlockTables(numBlocks: 8, blockSize: 4, maxLength: 32, cachesPrefixes: true);
        Computed(tables, SequenceOf(1, Template[..8]), 8);
        tables.Free(1);
        var parent = SequenceOf(2, [.. Template[..8], 9, 10]);
        Assert.Equal(8, tables.TakeCachedPrefix(parent)); // blocks 0 1 from the cache
        Computed(tables, parent, 10);                      // its own block 2: tokens 9 10

        Assert.True(tables.TryFork(2, 3, 10, out var fork));
        var child = SequenceOf(3, [.. Template[..8], 9, 10]);
        child.Append(61);
        child.Append(62);
        Computed(tables, child, 12);

        Assert.Equal([0, 1, 3], tables.BlocksOf(3).ToArray());
        Assert.Equal([new KvUnitCopy(From: 2, To: 3, NumTokens: 2)], fork.Copies.ToArray());
        Assert.Equal((2, 2), (tables.HoldersOf(0), tables.HoldersOf(1)));
        Assert.Equal(12, tables.TakeCachedPrefix(SequenceOf(4, [.. Template[..8], 9, 10, 61, 62, 63])));
        Assert.Equal([0, 1, 3], tables.BlocksOf(4).ToArray());
        foreach (var id in new long[] { 2, 3, 4 }) tables.Free(id);
        Assert.Equal((8, 0), (tables.NumFreeBlocks, tables.Usage.NumInUse));
        Assert.All(Enumerable.Range(0, 8), block => Assert.Equal(0, tables.HoldersOf(block)));
    }

    [Fact]
    public void PrefixCacheOff_nothingIsCachedOrTakenAndFreedBlocksArePlainFree()
    {
        var tables = new BlockTables(numBlocks: 4, blockSize: 4, maxLength: 16);
        Computed(tables, SequenceOf(1, Template[..8]), 8);

        Assert.Equal(0, tables.TakeCachedPrefix(SequenceOf(2, Template[..9])));
        Assert.Empty(tables.BlocksOf(2));
        Assert.Equal(0, tables.NumCachedBlocks);
        tables.Free(1);
        Assert.True(tables.TryReserve(3, 16));
        Assert.Equal([0, 1, 2, 3], tables.BlocksOf(3).ToArray());
        Assert.Equal(0, tables.NumEvictedBlocks);
    }

    [Fact]
    public void TakeCachedPrefix_sequenceThatHoldsBlocks_throwsNamingIt()
    {
        var tables = new BlockTables(numBlocks: 4, blockSize: 4, maxLength: 16, cachesPrefixes: true);
        tables.TryReserve(1, 3);

        var error = Assert.Throws<InvalidOperationException>(() => tables.TakeCachedPrefix(SequenceOf(1, [1, 2, 3])));

        Assert.Equal("sequence 1 already holds KV blocks; a cached prefix starts a table", error.Message);
    }

    [Fact]
    public void Register_blockCachedWithOtherTokens_throws()
    {
        var pool = new BlockPool(2);
        pool.TryAllocate(1, []);
        pool.Register(0, new PrefixBlockKey(null, [1, 2]));

        var error = Assert.Throws<InvalidOperationException>(() => pool.Register(0, new PrefixBlockKey(null, [1, 3])));

        Assert.Equal("block 0 is cached with other tokens than the ones registered for it now", error.Message);
    }

    [Fact]
    public void PrefixBlockKey_sameTokensAfterAnotherPreviousBlock_isAnotherKey()
    {
        var a = new PrefixBlockKey(null, [1, 2]);
        var b = new PrefixBlockKey(null, [3, 4]);

        Assert.Equal(new PrefixBlockKey(a, [5, 6]), new PrefixBlockKey(a, [5, 6]));
        Assert.NotEqual(new PrefixBlockKey(a, [5, 6]), new PrefixBlockKey(b, [5, 6]));
        Assert.NotEqual(new PrefixBlockKey(a, [5, 6]), new PrefixBlockKey(null, [5, 6]));
    }

    /// <summary><paramref name="sequence"/> reserved and computed to <paramref name="numComputed"/> tokens, its whole blocks cached, as after its steps.</summary>
    private static Sequence Computed(BlockTables tables, Sequence sequence, int numComputed)
    {
        Assert.True(tables.TryReserve(sequence.SequenceId, numComputed));
        sequence.NumComputed = numComputed;
        tables.CacheComputed(sequence);
        return sequence;
    }
}

using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>Per-request block tables over a 4-block pool of 4-token blocks (the KV cache manager of KV blocks).</summary>
public sealed class BlockTablesTests
{
    [Fact]
    public void TryReserve_growsATableABlockAtATimeAsItsTokensCrossBlockBoundaries()
    {
        var tables = new BlockTables(numBlocks: 4, blockSize: 4, maxLength: 16);

        Assert.True(tables.TryReserve(7, 3));
        Assert.Equal([0], tables.BlocksOf(7).ToArray());
        Assert.True(tables.TryReserve(7, 4));
        Assert.Equal([0], tables.BlocksOf(7).ToArray());
        Assert.True(tables.TryReserve(9, 1));
        Assert.True(tables.TryReserve(7, 5));

        Assert.Equal([0, 2], tables.BlocksOf(7).ToArray());
        Assert.Equal([1], tables.BlocksOf(9).ToArray());
        Assert.Equal(1, tables.NumFreeBlocks);
    }

    [Fact]
    public void TryReserve_outOfBlocks_isFalseAndLeavesTheTableAsItWas()
    {
        var tables = new BlockTables(numBlocks: 4, blockSize: 4, maxLength: 16);
        Assert.True(tables.TryReserve(1, 8));
        Assert.True(tables.TryReserve(2, 4));

        Assert.False(tables.TryReserve(1, 13)); // needs 2 more, 1 free
        Assert.False(tables.TryReserve(3, 5));

        Assert.Equal([0, 1], tables.BlocksOf(1).ToArray());
        Assert.Empty(tables.BlocksOf(3).ToArray());
        Assert.Equal(1, tables.NumFreeBlocks);
        Assert.True(tables.TryReserve(1, 12));
        Assert.Equal([0, 1, 3], tables.BlocksOf(1).ToArray());
    }

    [Fact]
    public void Free_givesEveryBlockBackAndASecondFreeDoesNothing()
    {
        var tables = new BlockTables(numBlocks: 4, blockSize: 4, maxLength: 16);
        tables.TryReserve(1, 6);
        tables.TryReserve(2, 6);

        tables.Free(1);
        tables.Free(1);

        Assert.Empty(tables.BlocksOf(1).ToArray());
        Assert.Equal(2, tables.NumFreeBlocks);
        Assert.True(tables.TryReserve(3, 16 - 8));
        Assert.Equal([0, 1], tables.BlocksOf(3).ToArray());
    }

    [Fact]
    public void PlaceOfAndUsage_throughTheInterface_nameEachTablesBlocksAndTheBlocksHeld()
    {
        IKvCacheManager tables = new BlockTables(numBlocks: 4, blockSize: 4, maxLength: 16);
        tables.TryReserve(5, 6);
        tables.TryReserve(6, 4);

        Assert.False(tables.TryReserve(7, 5));

        Assert.Equal([0, 1], KvBlockTable.BlocksOf(tables.PlaceOf(5)).ToArray());
        Assert.Equal([2], KvBlockTable.BlocksOf(tables.PlaceOf(6)).ToArray());
        Assert.Equal(new KvCacheUsage(KvUnit.Block, NumUnits: 4, UnitTokens: 4, NumInUse: 3), tables.Usage);
        Assert.Equal("blocks [0 1]", tables.PlaceOf(5).ToString());
    }

    [Fact]
    public void TryReserve_moreThanTheMaximumLength_throwsNamingTheTokens()
    {
        var tables = new BlockTables(numBlocks: 8, blockSize: 4, maxLength: 16);

        var error = Assert.Throws<InvalidOperationException>(() => tables.TryReserve(3, 17));

        Assert.Equal("sequence 3: 17 tokens exceed the maximum length 16", error.Message);
        Assert.Equal(8, tables.NumFreeBlocks);
    }

    [Fact]
    public void PlaceOf_aSequenceWithoutBlocks_throwsNamingIt()
    {
        var tables = new BlockTables(numBlocks: 4, blockSize: 4, maxLength: 16);
        tables.TryReserve(1, 5);

        var error = Assert.Throws<InvalidOperationException>(() => tables.PlaceOf(2));

        Assert.Equal("sequence 2 holds no KV blocks (2 of 4 held)", error.Message);
    }

    [Fact]
    public void TryFork_promptEndingInsideABlock_sharesTheWholeBlocksAndCopiesTheLastIntoANewOne()
    {
        var tables = new BlockTables(numBlocks: 8, blockSize: 4, maxLength: 32);
        tables.TryReserve(1, 10); // blocks 0 1 2, the last holding 2 tokens

        Assert.True(tables.TryFork(1, 2, 10, out var fork));

        Assert.Equal([0, 1, 3], tables.BlocksOf(2).ToArray());
        Assert.Equal([new KvUnitCopy(From: 2, To: 3, NumTokens: 2)], fork.Copies.ToArray());
        Assert.Equal(4, tables.Usage.NumInUse);
        tables.Free(1);
        Assert.Equal(3, tables.Usage.NumInUse); // blocks 0 and 1 stay with the fork
        tables.Free(2);
        Assert.Equal(8, tables.NumFreeBlocks);
    }

    [Fact]
    public void TryFork_promptEndingOnABlockBoundary_sharesEveryBlockAndCopiesNothing()
    {
        var tables = new BlockTables(numBlocks: 8, blockSize: 4, maxLength: 32);
        tables.TryReserve(1, 8);

        Assert.True(tables.TryFork(1, 2, 8, out var fork));
        Assert.True(tables.TryReserve(2, 9)); // the fork's next token goes to a block of its own

        Assert.Empty(fork.Copies);
        Assert.Equal([0, 1, 2], tables.BlocksOf(2).ToArray());
        Assert.Equal([0, 1], tables.BlocksOf(1).ToArray());
    }

    [Fact]
    public void TryFork_noBlockFreeForTheCopy_isFalseAndChangesNothing()
    {
        var tables = new BlockTables(numBlocks: 3, blockSize: 4, maxLength: 12);
        tables.TryReserve(1, 10);

        Assert.False(tables.TryFork(1, 2, 10, out var fork));

        Assert.Null(fork);
        Assert.Empty(tables.BlocksOf(2));
        Assert.Equal(3, tables.Usage.NumInUse);
        tables.Free(1);
        Assert.Equal(3, tables.NumFreeBlocks);
    }
}

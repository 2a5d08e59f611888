using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>Per-request block tables over a 4-block pool of 4-token blocks.</summary>
public sealed class BlockTablesTests
{
    [Fact]
    public void TryReserve_growsATableABlockAtATimeAsItsTokensCrossBlockBoundaries()
    {
        var tables = new BlockTables(numBlocks: 4, blockSize: 4);

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
        var tables = new BlockTables(numBlocks: 4, blockSize: 4);
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
        var tables = new BlockTables(numBlocks: 4, blockSize: 4);
        tables.TryReserve(1, 6);
        tables.TryReserve(2, 6);

        tables.Free(1);
        tables.Free(1);

        Assert.Empty(tables.BlocksOf(1).ToArray());
        Assert.Equal(2, tables.NumFreeBlocks);
        Assert.True(tables.TryReserve(3, 16 - 8));
        Assert.Equal([0, 1], tables.BlocksOf(3).ToArray());
    }
}

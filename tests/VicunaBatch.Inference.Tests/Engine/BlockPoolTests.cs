using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

public sealed class BlockPoolTests
{
    [Fact]
    public void TryAllocate_handsOutLowestFreeIdsAndRefusesWhatItLacksWithoutTakingAny()
    {
        var pool = new BlockPool(4);
        var a = new List<int>();
        var b = new List<int>();

        Assert.True(pool.TryAllocate(3, a));
        Assert.False(pool.TryAllocate(2, b));
        Assert.True(pool.TryAllocate(1, b));

        Assert.Equal([0, 1, 2], a);
        Assert.Equal([3], b);
        Assert.Equal(0, pool.NumFree);
        Assert.Equal(4, pool.NumUsed);
    }

    [Fact]
    public void Free_returnsTheBlockForTheNextAllocation()
    {
        var pool = new BlockPool(4);
        var blocks = new List<int>();
        pool.TryAllocate(4, blocks);

        pool.Free(2);
        pool.Free(0);
        var again = new List<int>();

        Assert.True(pool.TryAllocate(2, again));
        Assert.Equal([0, 2], again);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(4)]
    [InlineData(1)] // free, never allocated
    public void Free_blockNotAllocated_throwsWithTheValues(int block)
    {
        var pool = new BlockPool(4);
        pool.TryAllocate(1, []);

        var e = Assert.Throws<InvalidOperationException>(() => pool.Free(block));

        Assert.Equal($"block {block} is not allocated (blocks: 4, free: 3)", e.Message);
    }

    [Fact]
    public void Share_aBlockHeldByTwoTables_isFreeOnlyWhenBothLetGo()
    {
        var pool = new BlockPool(2);
        var blocks = new List<int>();
        pool.TryAllocate(1, blocks);
        pool.Share(blocks[0]);

        pool.Free(blocks[0]);
        Assert.Equal((1, 1), (pool.NumUsed, pool.HoldersOf(blocks[0])));
        pool.Free(blocks[0]);

        Assert.Equal((0, 0), (pool.NumUsed, pool.HoldersOf(blocks[0])));
        Assert.Throws<InvalidOperationException>(() => pool.Share(blocks[0])); // free: nobody to share it with
    }
}

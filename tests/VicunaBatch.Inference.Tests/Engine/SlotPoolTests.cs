using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

public sealed class SlotPoolTests
{
    [Fact]
    public void TryAllocate_freshPool_handsOutSlotsLowestFirstThenRefuses()
    {
        var pool = new SlotPool(4);

        var slots = new List<int>();
        while (pool.TryAllocate(out var slot))
        {
            slots.Add(slot);
        }

        Assert.Equal([0, 1, 2, 3], slots);
        Assert.False(pool.TryAllocate(out var none));
        Assert.Equal(-1, none);
        Assert.Equal(0, pool.NumFree);
        Assert.Equal(4, pool.NumUsed);
    }

    [Fact]
    public void TryAllocate_afterFrees_reusesTheLowestFreeSlotFirst()
    {
        var pool = new SlotPool(4);
        for (var i = 0; i < 3; i++)
        {
            pool.TryAllocate(out _);
        }

        pool.Free(2);
        pool.Free(0);

        Assert.True(pool.TryAllocate(out var first));
        Assert.True(pool.TryAllocate(out var second));
        Assert.True(pool.TryAllocate(out var third));
        Assert.Equal([0, 2, 3], new[] { first, second, third });
        Assert.False(pool.TryAllocate(out _));
    }

    [Fact]
    public void Free_sameSlotTwice_throwsNamingTheSlot()
    {
        var pool = new SlotPool(4);
        pool.TryAllocate(out _);
        pool.TryAllocate(out _);
        pool.TryAllocate(out var slot);
        Assert.Equal(2, slot);
        pool.Free(slot);

        var error = Assert.Throws<InvalidOperationException>(() => pool.Free(slot));

        Assert.Equal("slot 2 is not allocated (slots: 4, free: 2)", error.Message);
        Assert.Equal(2, pool.NumFree);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(4)]
    public void Free_slotOutsideThePool_throwsNamingTheSlot(int slot)
    {
        var pool = new SlotPool(4);

        var error = Assert.Throws<InvalidOperationException>(() => pool.Free(slot));

        Assert.StartsWith($"slot {slot} is not allocated", error.Message);
        Assert.Equal(4, pool.NumFree);
    }
}

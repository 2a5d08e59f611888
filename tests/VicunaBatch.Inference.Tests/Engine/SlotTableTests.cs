using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>The KV cache manager of KV slots, through <see cref="IKvCacheManager"/>: 3 slots of 8 tokens.</summary>
public sealed class SlotTableTests
{
    [Fact]
    public void TryReserve_handsOutTheLowestFreeSlotAtTheFirstReservationAndKeepsIt()
    {
        IKvCacheManager slots = new SlotTable(numSlots: 3, maxLength: 8);

        Assert.True(slots.TryReserve(10, 1));
        Assert.True(slots.TryReserve(11, 5));
        Assert.True(slots.TryReserve(10, 8)); // a slot holds the maximum length from the start

        Assert.Equal([new KvSlot(0), new KvSlot(1)], new[] { slots.PlaceOf(10), slots.PlaceOf(11) });
        Assert.Equal(new KvCacheUsage(KvUnit.Slot, NumUnits: 3, UnitTokens: 8, NumInUse: 2), slots.Usage);
    }

    [Fact]
    public void TryReserve_noSlotFree_isFalseAndTakesNothing()
    {
        var slots = new SlotTable(numSlots: 2, maxLength: 8);
        slots.TryReserve(1, 2);
        slots.TryReserve(2, 2);

        Assert.False(slots.TryReserve(3, 1));

        Assert.False(slots.TryGetSlot(3, out _));
        Assert.Equal(0, slots.NumFreeSlots);
        Assert.True(slots.TryReserve(1, 3));
    }

    [Fact]
    public void Free_givesTheSlotBackToTheNextRequestAndASecondFreeDoesNothing()
    {
        IKvCacheManager slots = new SlotTable(numSlots: 3, maxLength: 8);
        slots.TryReserve(1, 1);
        slots.TryReserve(2, 1);
        slots.TryReserve(3, 1);

        slots.Free(2);
        slots.Free(2);

        Assert.Equal(2, slots.Usage.NumInUse);
        Assert.True(slots.TryReserve(4, 1));
        Assert.Equal(new KvSlot(1), slots.PlaceOf(4));
        Assert.False(slots.TryReserve(5, 1));
    }

    [Fact]
    public void TryReserve_moreTokensThanASlotHolds_throwsNamingThem()
    {
        var slots = new SlotTable(numSlots: 2, maxLength: 8);

        var error = Assert.Throws<InvalidOperationException>(() => slots.TryReserve(7, 9));

        Assert.Equal("sequence 7: 9 tokens do not fit a slot of 8", error.Message);
        Assert.Equal(2, slots.NumFreeSlots);
    }

    [Fact]
    public void PlaceOf_aSequenceWithoutASlot_throwsNamingIt()
    {
        var slots = new SlotTable(numSlots: 2, maxLength: 8);
        slots.TryReserve(1, 1);

        var error = Assert.Throws<InvalidOperationException>(() => slots.PlaceOf(4));

        Assert.Equal("sequence 4 holds no KV slot (1 of 2 held)", error.Message);
    }

    [Fact]
    public void KvSlot_IndexOf_aBlockTable_throwsNamingIt()
    {
        var error = Assert.Throws<InvalidOperationException>(() => KvSlot.IndexOf(new KvBlockTable([3, 1])));

        Assert.Equal("expected a KV slot, got blocks [3 1]", error.Message);
        Assert.Equal(2, KvSlot.IndexOf(new KvSlot(2)));
    }

    [Fact]
    public void TryFork_takesAFreeSlotAndCopiesTheParentsTokensIntoIt()
    {
        var slots = new SlotTable(numSlots: 2, maxLength: 16);
        slots.TryReserve(7, 5);

        Assert.True(slots.TryFork(7, 8, 5, out var fork));
        Assert.False(slots.TryFork(7, 9, 5, out var none)); // both slots held

        Assert.Equal(new KvFork(7, 8, 5, [new KvUnitCopy(From: 0, To: 1, NumTokens: 5)]).Copies.ToArray(), fork.Copies.ToArray());
        Assert.Equal((7L, 8L), (fork.ParentId, fork.ChildId));
        Assert.Null(none);
        Assert.Equal(1, KvSlot.IndexOf(slots.PlaceOf(8)));
    }
}

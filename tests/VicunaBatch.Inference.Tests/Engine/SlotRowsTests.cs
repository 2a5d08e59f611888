using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Onnx;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// The rectangular decode call <see cref="GqaRunner"/> builds from a plan over 5 KV slots: a decoding sequence's row on
/// its slot, fillers where its next real step writes anyway.
/// </summary>
public sealed class SlotRowsTests
{
    [Fact]
    public void Fill_decodesChunksIdleAndFreeSlots_putsEachFillerWhereItsSlotIsWrittenNext()
    {
        var plan = new StepPlan(
            [new DecodeRow(7, TokenId: 5, PastLength: 9, new KvSlot(2))],
            [new PrefillChunk(8, PastLength: 4, [40, 41], NeedsLogits: false, new KvSlot(0))])
        {
            Idle = [new IdleSequence(9, Length: 6, new KvSlot(4))],
        };
        var rows = new SlotRow[5];

        var count = SlotRows.Fill(plan, rows);

        Assert.Equal(5, count);
        Assert.Equal(
            [
                new SlotRow(SlotRow.Filler, 0, 4), // a prompt whose chunk runs after the call, from position 4
                new SlotRow(SlotRow.Filler, 0, 0), // free
                new SlotRow(7, 5, 9),
                new SlotRow(SlotRow.Filler, 0, 0), // free
                new SlotRow(SlotRow.Filler, 0, 6), // a prompt the budget left for later, at its next position
            ],
            rows);
    }

    [Fact]
    public void Fill_rowsEndAtTheHighestSlotHeld()
    {
        var plan = new StepPlan([new DecodeRow(3, 11, 2, new KvSlot(1)), new DecodeRow(1, 12, 7, new KvSlot(0))], []);
        var rows = new SlotRow[5];

        Assert.Equal(2, SlotRows.Fill(plan, rows));
        Assert.Equal([new SlotRow(1, 12, 7), new SlotRow(3, 11, 2)], rows[..2]);
    }

    [Fact]
    public void Fill_noDecodes_isNoCall()
    {
        var plan = new StepPlan([], [new PrefillChunk(8, 0, [40], NeedsLogits: true, new KvSlot(3))]);

        Assert.Equal(0, SlotRows.Fill(plan, new SlotRow[5]));
    }

    [Fact]
    public void Fill_aSlotPastTheRows_throwsNamingIt()
    {
        var plan = new StepPlan([new DecodeRow(3, 11, 2, new KvSlot(5))], []);

        var error = Assert.Throws<InvalidOperationException>(() => SlotRows.Fill(plan, new SlotRow[5]));

        Assert.Equal("the plan binds slot 5; the decode call has 5 slots", error.Message);
    }

    [Fact]
    public void Fill_aBlockTable_throwsNamingIt()
    {
        var plan = new StepPlan([new DecodeRow(3, 11, 2, new KvBlockTable([4, 2]))], []);

        var error = Assert.Throws<InvalidOperationException>(() => SlotRows.Fill(plan, new SlotRow[5]));

        Assert.Equal("expected a KV slot, got blocks [4 2]", error.Message);
    }
}

using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// One row of <see cref="GqaRunner"/>'s batched decode call: row r binds KV slot r. A filler row (no sequence) keeps
/// the call rectangular: it feeds token 0 at <c>PastLength</c>, a position its slot's next real step overwrites.
/// </summary>
internal readonly record struct SlotRow(long SequenceId, int TokenId, int PastLength)
{
    public const long Filler = -1;

    public bool IsFiller => SequenceId == Filler;
}

/// <summary>The rows of a step's decode call over KV slots, built from the plan.</summary>
internal static class SlotRows
{
    /// <summary>
    /// Writes rows 0 .. n-1 of the plan's decode call into <paramref name="rows"/> and returns n: every slot up to the
    /// highest one a running sequence holds. A decoding sequence's row on its slot; fillers elsewhere, where GQA writes
    /// one position of junk KV: at a prompt's next position on a slot whose prompt is being prefilled (this step's
    /// chunk runs after the decode call and writes there; an idle prompt's next chunk will), at 0 on a free slot
    /// (a request admitted there writes its prompt from 0). No decodes: no call, 0 rows.
    /// </summary>
    public static int Fill(StepPlan plan, Span<SlotRow> rows)
    {
        if (plan.DecodeRows.IsEmpty)
        {
            return 0;
        }
        var count = 0;
        foreach (var row in plan.DecodeRows) count = Math.Max(count, KvSlot.IndexOf(row.Place) + 1);
        foreach (var chunk in plan.Prefills) count = Math.Max(count, KvSlot.IndexOf(chunk.Place) + 1);
        foreach (var idle in plan.Idle) count = Math.Max(count, KvSlot.IndexOf(idle.Place) + 1);
        if (count > rows.Length)
        {
            throw new InvalidOperationException($"the plan binds slot {count - 1}; the decode call has {rows.Length} slots");
        }
        rows[..count].Fill(new SlotRow(SlotRow.Filler, 0, 0));
        foreach (var chunk in plan.Prefills) rows[KvSlot.IndexOf(chunk.Place)] = new SlotRow(SlotRow.Filler, 0, chunk.PastLength);
        foreach (var idle in plan.Idle) rows[KvSlot.IndexOf(idle.Place)] = new SlotRow(SlotRow.Filler, 0, idle.Length);
        foreach (var row in plan.DecodeRows) rows[KvSlot.IndexOf(row.Place)] = new SlotRow(row.SequenceId, row.TokenId, row.PastLength);
        return count;
    }
}

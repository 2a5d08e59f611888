using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Onnx;
using static VicunaBatch.Inference.Tests.Engine.SchedulerSteps;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// The scheduler alone, with the engine's update done by hand: decodes add one computed token and append the
/// sampled one; prefill chunks add their length and, on the last chunk, append the first output token.
/// </summary>
public sealed class SchedulerTests
{
    [Fact]
    public void Schedule_threeArrivals_admitsFifoIntoLowestSlotsWithWholePrompts()
    {
        var (scheduler, slots) = OverSlots(numSlots: 4, maxScheduledTokens: 64);
        var a = NewSequence(0, promptLength: 3);
        var b = NewSequence(1, promptLength: 2);
        var c = NewSequence(2, promptLength: 4);
        scheduler.Add(a);
        scheduler.Add(b);
        scheduler.Add(c);

        var plan = scheduler.Schedule();

        Assert.Empty(plan.DecodeRows);
        Assert.Equal(
            [
                Chunk(0, 0, 0, [0, 1, 2], true),
                Chunk(1, 1, 0, [100, 101], true),
                Chunk(2, 2, 0, [200, 201, 202, 203], true),
            ],
            Chunks(plan));
        Assert.Equal([0, 1, 2], new[] { SlotOf(slots, a), SlotOf(slots, b), SlotOf(slots, c) });
        Assert.Equal(0, scheduler.NumWaiting);
        Assert.Equal(3, scheduler.NumRunning);
        Assert.Equal(1, slots.NumFreeSlots);
        Assert.Equal(9, plan.NumScheduledTokens);
    }

    [Fact]
    public void Schedule_poolFull_leavesTheRestWaitingInOrder()
    {
        var (scheduler, slots) = OverSlots(numSlots: 2, maxScheduledTokens: 64);
        var sequences = Enumerable.Range(0, 4).Select(i => NewSequence(i, promptLength: 2)).ToList();
        sequences.ForEach(scheduler.Add);

        var first = scheduler.Schedule();
        Apply(first, sequences, token: 900);

        Assert.Equal([0L, 1L], first.Prefills.Select(p => p.SequenceId));
        Assert.Equal(2, scheduler.NumWaiting);
        Assert.Equal(0, slots.NumFreeSlots);
        Assert.Equal([2L, 3L], scheduler.Waiting.Select(s => s.SequenceId));

        var second = scheduler.Schedule();

        Assert.Equal([new SlotRow(0, 900, 2), new SlotRow(1, 900, 2)], SlotRowsOf(second));
        Assert.Empty(second.Prefills);
        Assert.Equal(2, scheduler.NumWaiting);
        Assert.Equal(0, slots.NumFreeSlots);
        Assert.Equal(SequenceStatus.Waiting, sequences[2].Status);
        Assert.Equal(-1, SlotOf(slots, sequences[2]));
    }

    [Fact]
    public void Schedule_tokenBudget_goesToDecodesThenContinuingPrefillsThenAdmissions()
    {
        var (scheduler, slots) = OverSlots(numSlots: 4, maxScheduledTokens: 8);
        var a = NewSequence(0, promptLength: 2);
        var b = NewSequence(1, promptLength: 3);
        var c = NewSequence(2, promptLength: 9);
        var d = NewSequence(3, promptLength: 5);
        List<Sequence> all = [a, b, c, d];
        scheduler.Add(a);
        scheduler.Add(b);
        Apply(scheduler.Schedule(), all, token: 50);

        // step 2: A and B decode (2 tokens), C is admitted with the 6 tokens left
        scheduler.Add(c);
        var step2 = scheduler.Schedule();
        Apply(step2, all, token: 51);

        Assert.Equal([new SlotRow(0, 50, 2), new SlotRow(1, 50, 3), new SlotRow(SlotRow.Filler, 0, 0)], SlotRowsOf(step2));
        Assert.Equal([Chunk(2, 2, 0, [200, 201, 202, 203, 204, 205], false)], Chunks(step2));

        // step 3: 2 decodes, C's last 3 prompt tokens, then D admitted with the 3 tokens left
        scheduler.Add(d);
        var step3 = scheduler.Schedule();
        Apply(step3, all, token: 52);

        Assert.Equal(
            [
                new SlotRow(0, 51, 3),
                new SlotRow(1, 51, 4),
                new SlotRow(SlotRow.Filler, 0, 6), // C is prefilling: filler at its slot's length
                new SlotRow(SlotRow.Filler, 0, 0), // D was admitted this step
            ],
            SlotRowsOf(step3));
        Assert.Equal(
            [
                Chunk(2, 2, 6, [206, 207, 208], true),
                Chunk(3, 3, 0, [300, 301, 302], false),
            ],
            Chunks(step3));
        Assert.Equal(8, step3.NumScheduledTokens);

        // step 4: A, B, C decode; D gets its last 2 tokens
        var step4 = scheduler.Schedule();

        Assert.Equal(
            [new SlotRow(0, 52, 4), new SlotRow(1, 52, 5), new SlotRow(2, 52, 9), new SlotRow(SlotRow.Filler, 0, 3)],
            SlotRowsOf(step4));
        Assert.Equal([Chunk(3, 3, 3, [303, 304], true)], Chunks(step4));
        Assert.Equal(5, step4.NumScheduledTokens);
    }

    [Fact]
    public void Schedule_budgetSpentOnDecodesAndPrefill_admitsNothing()
    {
        var (scheduler, slots) = OverSlots(numSlots: 3, maxScheduledTokens: 4);
        var a = NewSequence(0, promptLength: 1);
        var b = NewSequence(1, promptLength: 10);
        var c = NewSequence(2, promptLength: 1);
        List<Sequence> all = [a, b, c];
        scheduler.Add(a);
        Apply(scheduler.Schedule(), all, token: 7);
        scheduler.Add(b);
        scheduler.Add(c);

        var plan = scheduler.Schedule();

        Assert.Equal([Chunk(1, 1, 0, [100, 101, 102], false)], Chunks(plan));
        Assert.Equal(1, scheduler.NumWaiting);
        Assert.Equal(1, slots.NumFreeSlots);
    }

    [Fact]
    public void Schedule_longPrompt_isSplitIntoBudgetSizedChunksWithLogitsOnlyOnTheLast()
    {
        var (scheduler, slots) = OverSlots(numSlots: 2, maxScheduledTokens: 4);
        var sequence = NewSequence(5, promptLength: 10);
        scheduler.Add(sequence);

        var chunks = new List<string>();
        for (var step = 0; step < 3; step++)
        {
            var plan = scheduler.Schedule();
            Assert.Empty(plan.DecodeRows);
            chunks.AddRange(Chunks(plan));
            Apply(plan, [sequence], token: 42);
        }

        Assert.Equal(
            [
                Chunk(5, 0, 0, [500, 501, 502, 503], false),
                Chunk(5, 0, 4, [504, 505, 506, 507], false),
                Chunk(5, 0, 8, [508, 509], true),
            ],
            chunks);
        Assert.Equal([new SlotRow(5, 42, 10)], SlotRowsOf(scheduler.Schedule()));
    }

    [Fact]
    public void Schedule_freedMiddleSlot_decodeRowsCoverUpToHighestUsedSlotWithFiller()
    {
        var (scheduler, slots) = OverSlots(numSlots: 4, maxScheduledTokens: 16);
        var sequences = Enumerable.Range(0, 3).Select(i => NewSequence(i, promptLength: 2)).ToList();
        sequences.ForEach(scheduler.Add);
        Apply(scheduler.Schedule(), sequences, token: 11);

        scheduler.Finish(sequences[1]);
        var plan = scheduler.Schedule();

        Assert.Equal(
            [new SlotRow(0, 11, 2), new SlotRow(SlotRow.Filler, 0, 0), new SlotRow(2, 11, 2)],
            SlotRowsOf(plan));
        Assert.Equal(2, plan.NumDecodes);

        Apply(plan, sequences, token: 12);
        scheduler.Finish(sequences[2]);

        Assert.Equal([new SlotRow(0, 12, 3)], SlotRowsOf(scheduler.Schedule()));
    }

    [Fact]
    public void Finish_runningSequence_freesItsSlotForTheNextWaitingRequest()
    {
        var (scheduler, slots) = OverSlots(numSlots: 2, maxScheduledTokens: 16);
        var a = NewSequence(0, promptLength: 2);
        var b = NewSequence(1, promptLength: 2);
        var c = NewSequence(2, promptLength: 3);
        List<Sequence> all = [a, b, c];
        all.ForEach(scheduler.Add);
        Apply(scheduler.Schedule(), all, token: 9);
        Assert.Equal(1, scheduler.NumWaiting);

        scheduler.Finish(a);

        Assert.Equal(SequenceStatus.Finished, a.Status);
        Assert.Equal(-1, SlotOf(slots, a));
        Assert.Equal(1, slots.NumFreeSlots);

        var plan = scheduler.Schedule();

        Assert.Equal(0, SlotOf(slots, c));
        Assert.Equal([Chunk(2, 0, 0, [200, 201, 202], true)], Chunks(plan));
        Assert.Equal([new SlotRow(SlotRow.Filler, 0, 0), new SlotRow(1, 9, 2)], SlotRowsOf(plan));
        Assert.Equal(0, scheduler.NumWaiting);
        Assert.Equal(0, slots.NumFreeSlots);
    }

    [Fact]
    public void Finish_waitingSequence_leavesTheQueueWithoutTouchingSlots()
    {
        var (scheduler, slots) = OverSlots(numSlots: 1, maxScheduledTokens: 8);
        var a = NewSequence(0, promptLength: 2);
        var b = NewSequence(1, promptLength: 2);
        var c = NewSequence(2, promptLength: 2);
        List<Sequence> all = [a, b, c];
        all.ForEach(scheduler.Add);
        Apply(scheduler.Schedule(), all, token: 3);

        scheduler.Finish(b);

        Assert.Equal(SequenceStatus.Finished, b.Status);
        Assert.Equal([2L], scheduler.Waiting.Select(s => s.SequenceId));
        Assert.Equal(0, slots.NumFreeSlots);

        scheduler.Finish(a);
        Assert.Equal([Chunk(2, 0, 0, [200, 201], true)], Chunks(scheduler.Schedule()));
    }

    [Fact]
    public void A_long_prompt_keeps_getting_tokens_while_short_requests_keep_arriving()
    {
        // 4 slots, budget 4: three decoding requests leave one token per step for the long prompt
        var (scheduler, slots) = OverSlots(numSlots: 4, maxScheduledTokens: 4);
        var all = new List<Sequence>();
        Sequence Arrive(int promptLength)
        {
            var sequence = NewSequence(all.Count, promptLength);
            all.Add(sequence);
            scheduler.Add(sequence);
            return sequence;
        }

        for (var i = 0; i < 3; i++)
        {
            Arrive(1);
        }
        Apply(scheduler.Schedule(), all, token: 1);
        var longOne = Arrive(20);

        var longChunks = new List<int>();
        var step = 0;
        while (longOne.IsPrefilling)
        {
            // two short requests arrive every step; the oldest decoding short one ends every other step
            Arrive(1);
            Arrive(1);
            if (step % 2 == 1 && scheduler.Running.FirstOrDefault(s => s != longOne && !s.IsPrefilling) is { } done)
            {
                scheduler.Finish(done);
            }
            var plan = scheduler.Schedule();
            Assert.True(plan.NumScheduledTokens <= 4);
            longChunks.Add(plan.Prefills.Where(p => p.SequenceId == longOne.SequenceId).Sum(p => p.TokenIds.Length));
            Apply(plan, all, token: 1);
            step++;
            Assert.True(step <= 20, $"long prompt still prefilling after {step} steps: {longOne.NumComputed}/20 computed");
        }

        // budget 4 minus the decodes left (3, 2, 2, 1, 1, 0, 0), then the last token
        Assert.Equal([1, 2, 2, 3, 3, 4, 4, 1], longChunks);
        Assert.Equal(20, longOne.NumComputed);
        // the short requests that queued behind it are admitted, in arrival order, once the prompt is done
        Assert.Equal([4L, 5L, 6L], scheduler.Running.Where(s => s.IsPrefilling == false && s != longOne && s.SequenceId > 3).Select(s => s.SequenceId));
        Assert.Equal(16 - 3, scheduler.NumWaiting);
    }

    /// <summary>A prefill chunk as text: its record compares token ids by reference.</summary>
    private static string Chunk(long sequenceId, int slot, int pastLength, int[] tokenIds, bool needsLogits) =>
        $"seq {sequenceId} slot {slot} past {pastLength} [{string.Join(' ', tokenIds)}]{(needsLogits ? " logits" : "")}";

    private static string[] Chunks(StepPlan plan) =>
        plan.Prefills.Select(p => Chunk(p.SequenceId, KvSlot.IndexOf(p.Place), p.PastLength, [.. p.TokenIds], p.NeedsLogits)).ToArray();
}

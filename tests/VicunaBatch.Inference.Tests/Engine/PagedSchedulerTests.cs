using VicunaBatch.Inference.Engine;
using static VicunaBatch.Inference.Tests.Engine.SchedulerSteps;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// The paged scheduler alone over a 4-block pool of 4-token blocks (the engine's update done by hand, as in
/// <see cref="SchedulerTests"/>): mixed steps, block tables, and preemption by recompute.
/// </summary>
public sealed class PagedSchedulerTests
{
    [Fact]
    public void Schedule_decodesPrefillChunkAndAdmission_packIntoOneStepWithTheirBlockTables()
    {
        var (scheduler, blocks) = OverBlocks(numBlocks: 8, blockSize: 4, maxBatchSize: 4, maxLength: 32, maxScheduledTokens: 8);
        var a = NewSequence(0, promptLength: 3);
        var b = NewSequence(1, promptLength: 5);
        var c = NewSequence(2, promptLength: 9);
        var d = NewSequence(3, promptLength: 4);
        List<Sequence> all = [a, b, c, d];
        scheduler.Add(a);
        scheduler.Add(b);
        Apply(scheduler.Schedule(), all, token: 50);
        scheduler.Add(c);
        scheduler.Add(d);

        // A and B decode (2 tokens), C gets the 6 left; D waits for budget
        var step2 = scheduler.Schedule();
        Apply(step2, all, token: 51);
        // A and B decode, C's last 3 prompt tokens, D admitted with the 3 left
        var step3 = scheduler.Schedule();

        Assert.Equal([(0L, 50, 3), (1L, 50, 5)], Decodes(step2));
        Assert.Equal([Chunk(2, 0, [200, 201, 202, 203, 204, 205], false)], Chunks(step2));
        Assert.Equal([(0L, 51, 4), (1L, 51, 6)], Decodes(step3));
        Assert.Equal([Chunk(2, 6, [206, 207, 208], true), Chunk(3, 0, [300, 301, 302], false)], Chunks(step3));
        Assert.Equal(8, step3.NumScheduledTokens);
        Assert.Equal(
            ["0: 0 5", "1: 1 2", "2: 3 4 6", "3: 7"],
            BlockTablesOf(step3).OrderBy(t => t.Key).Select(t => $"{t.Key}: {string.Join(' ', t.Value)}"));
        Assert.Equal(0, scheduler.NumPreemptions);
    }

    [Fact]
    public void Schedule_poolEmpty_preemptsTheYoungestWhichRecomputesPromptAndOutputLater()
    {
        var (scheduler, blocks) = OverBlocks(numBlocks: 4, blockSize: 4, maxBatchSize: 4, maxLength: 16, maxScheduledTokens: 16);
        var a = NewSequence(0, promptLength: 6);
        var b = NewSequence(1, promptLength: 6);
        List<Sequence> all = [a, b];
        scheduler.Add(a);
        scheduler.Add(b);
        for (var token = 60; token < 63; token++)
        {
            Apply(scheduler.Schedule(), all, token); // prefill both, then 2 decodes each: 8 tokens in 2 blocks each
        }

        var step4 = scheduler.Schedule(); // A needs a 3rd block for its 9th token: B gives its 2 back

        Assert.Equal([(0L, 62, 8)], Decodes(step4));
        Assert.Empty(step4.Prefills);
        Assert.Equal([0, 1, 2], BlockTablesOf(step4)[0].ToArray());
        Assert.Equal(1, scheduler.NumPreemptions);
        Assert.Equal((SequenceStatus.Waiting, 0, 9, 1), (b.Status, b.NumComputed, b.NumPrefillTokens, b.NumPreemptions));
        Assert.Equal([60, 61, 62], b.OutputIds);
        Assert.Equal([1L], scheduler.Waiting.Select(s => s.SequenceId));
        Apply(step4, all, token: 63);

        var step5 = scheduler.Schedule(); // B needs 3 blocks, 1 is free: it waits (admission never preempts)
        Apply(step5, all, token: 64);
        scheduler.Finish(a);
        var step6 = scheduler.Schedule();

        Assert.Equal([(0L, 63, 9)], Decodes(step5));
        Assert.Empty(step5.Prefills);
        Assert.Equal(1, scheduler.NumPreemptions);
        Assert.Empty(step6.DecodeRows);
        Assert.Equal([Chunk(1, 0, [100, 101, 102, 103, 104, 105, 60, 61, 62], true)], Chunks(step6));
        Assert.Equal([0, 1, 2], BlockTablesOf(step6)[1].ToArray());
        Apply(step6, all, token: 65);
        Assert.Equal([60, 61, 62, 65], b.OutputIds);
        Assert.Equal([(1L, 65, 9)], Decodes(scheduler.Schedule()));
    }

    [Fact]
    public void Schedule_youngestNeedsABlock_preemptsItselfWhileTheOlderOneDecodes()
    {
        var (scheduler, blocks) = OverBlocks(numBlocks: 4, blockSize: 4, maxBatchSize: 4, maxLength: 16, maxScheduledTokens: 16);
        var a = NewSequence(0, promptLength: 5);
        var b = NewSequence(1, promptLength: 8);
        List<Sequence> all = [a, b];
        scheduler.Add(a);
        scheduler.Add(b);
        Apply(scheduler.Schedule(), all, token: 70);

        var plan = scheduler.Schedule();

        Assert.Equal([(0L, 70, 5)], Decodes(plan));
        Assert.Equal(["0"], BlockTablesOf(plan).Keys.Select(k => k.ToString()));
        Assert.Equal((SequenceStatus.Waiting, 9, 2), (b.Status, b.NumPrefillTokens, blocks.NumFreeBlocks));
        Assert.Equal([70], b.OutputIds);
    }

    [Fact]
    public void Schedule_preemptedRequest_isAdmittedBeforeEarlierWaitingOnes()
    {
        var (scheduler, blocks) = OverBlocks(numBlocks: 4, blockSize: 4, maxBatchSize: 4, maxLength: 16, maxScheduledTokens: 16);
        var a = NewSequence(0, promptLength: 5);
        var b = NewSequence(1, promptLength: 8);
        var c = NewSequence(2, promptLength: 2);
        List<Sequence> all = [a, b, c];
        scheduler.Add(a);
        scheduler.Add(b);
        Apply(scheduler.Schedule(), all, token: 70);
        scheduler.Add(c);
        Apply(scheduler.Schedule(), all, token: 71); // B preempts itself; nothing admitted in a step that preempted
        Assert.Equal([1L, 2L], scheduler.Waiting.Select(s => s.SequenceId));

        scheduler.Finish(a);
        var plan = scheduler.Schedule();

        Assert.Equal([Chunk(1, 0, [100, 101, 102, 103, 104, 105, 106, 107, 70], true), Chunk(2, 0, [200, 201], true)], Chunks(plan));
    }

    [Fact]
    public void Finish_preemptedWaitingRequest_leavesTheQueueWithItsOutput()
    {
        var (scheduler, blocks) = OverBlocks(numBlocks: 4, blockSize: 4, maxBatchSize: 4, maxLength: 16, maxScheduledTokens: 16);
        var a = NewSequence(0, promptLength: 5);
        var b = NewSequence(1, promptLength: 8);
        scheduler.Add(a);
        scheduler.Add(b);
        Apply(scheduler.Schedule(), [a, b], token: 70);
        scheduler.Schedule();

        scheduler.Finish(b);

        Assert.Equal(0, scheduler.NumWaiting);
        Assert.Equal(SequenceStatus.Finished, b.Status);
        Assert.Equal([70], b.OutputIds);
    }

    [Fact]
    public void Schedule_batchFull_admitsNoMoreThanMaxBatchSize()
    {
        var (scheduler, blocks) = OverBlocks(numBlocks: 16, blockSize: 4, maxBatchSize: 2, maxLength: 16, maxScheduledTokens: 16);
        var all = Enumerable.Range(0, 3).Select(i => NewSequence(i, promptLength: 2)).ToList();
        all.ForEach(scheduler.Add);

        var plan = scheduler.Schedule();

        Assert.Equal([0L, 1L], plan.Prefills.Select(p => p.SequenceId));
        Assert.Equal(1, scheduler.NumWaiting);
    }

    [Fact]
    public void Constructor_poolSmallerThanOneFullLengthRequest_throws()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            OverBlocks(numBlocks: 3, blockSize: 4, maxBatchSize: 2, maxLength: 16, maxScheduledTokens: 16));

        Assert.StartsWith("3 blocks of 4 tokens hold fewer than one request of 16 tokens", e.Message);
    }

    private static string Chunk(long sequenceId, int pastLength, int[] tokenIds, bool needsLogits) =>
        $"seq {sequenceId} past {pastLength} [{string.Join(' ', tokenIds)}]{(needsLogits ? " logits" : "")}";

    private static string[] Chunks(StepPlan plan) =>
        plan.Prefills.Select(p => Chunk(p.SequenceId, p.PastLength, [.. p.TokenIds], p.NeedsLogits)).ToArray();
}

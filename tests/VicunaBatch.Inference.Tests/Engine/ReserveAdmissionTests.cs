using VicunaBatch.Inference.Engine;
using static VicunaBatch.Inference.Tests.Engine.SchedulerSteps;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// Admission that counts the KV blocks each request will need to its end (<see cref="KvAdmission.Reserve"/>): running
/// requests always grow, nobody is preempted, and every prompt is computed once; against admission on demand, which
/// preempts on the same requests.
/// </summary>
public sealed class ReserveAdmissionTests
{
    [Fact]
    public void Schedule_reserve_admitsOnlyWhatTheBlocksHoldToItsEnd_andTheNextWhenOneEnds()
    {
        // 8 blocks of 4: each request (6 + 10 tokens) needs 4 blocks to its end, so two run at once
        var (scheduler, blocks) = OverBlocks(numBlocks: 8, blockSize: 4, maxBatchSize: 4, maxLength: 32, maxScheduledTokens: 32, KvAdmission.Reserve);
        var all = Enumerable.Range(0, 3).Select(i => NewSequence(i, promptLength: 6, maxTokens: 10)).ToList();
        all.ForEach(scheduler.Add);

        var first = scheduler.Schedule();

        Assert.Equal([0L, 1L], first.Prefills.Select(p => p.SequenceId));
        Assert.Equal(4, blocks.NumFreeBlocks); // 2 blocks each now; the other 4 are A's and B's growth
        Assert.Equal([2L], scheduler.Waiting.Select(s => s.SequenceId));
        Apply(first, all, token: 7);
        var steps = RunToTheEnd(scheduler, all, out var admittedAt);

        Assert.Equal(0, scheduler.NumPreemptions);
        Assert.Equal(6 * 3, steps.Sum(p => p.Prefills.Sum(c => c.TokenIds.Length)) + first.Prefills.Sum(c => c.TokenIds.Length));
        Assert.All(all, s => Assert.Equal(10, s.OutputIds.Count));
        Assert.Equal(10, admittedAt[2]); // A and B decode their 9 other tokens, end, and C starts the step after
        Assert.Equal(8, blocks.NumFreeBlocks);
    }

    [Fact]
    public void Schedule_onDemand_sameRequests_preemptAndRecompute()
    {
        var (scheduler, _) = OverBlocks(numBlocks: 8, blockSize: 4, maxBatchSize: 4, maxLength: 32, maxScheduledTokens: 32, KvAdmission.OnDemand);
        var all = Enumerable.Range(0, 3).Select(i => NewSequence(i, promptLength: 6, maxTokens: 10)).ToList();
        all.ForEach(scheduler.Add);

        var steps = RunToTheEnd(scheduler, all, out _);

        Assert.True(scheduler.NumPreemptions > 0);
        Assert.True(steps.Sum(p => p.Prefills.Sum(c => c.TokenIds.Length)) > 6 * 3);
        Assert.All(all, s => Assert.Equal(10, s.OutputIds.Count));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Schedule_reserve_manyRequestsOfMixedLengths_neverPreempt_computeEachPromptOnce_andStayWithinThePool(int seed)
    {
        var random = new Random(seed);
        var (scheduler, blocks) = OverBlocks(numBlocks: 24, blockSize: 8, maxBatchSize: 16, maxLength: 96, maxScheduledTokens: 64, KvAdmission.Reserve);
        var all = Enumerable.Range(0, 60).Select(i => NewSequence(i, promptLength: random.Next(1, 40), maxTokens: random.Next(1, 57))).ToList();
        all.ForEach(scheduler.Add);

        var steps = RunToTheEnd(scheduler, all, out _, afterEachStep: () =>
        {
            // every running request's reservation fits: what they hold plus what they will still take
            var toEnd = scheduler.Running.Sum(s => blocks.UnitsToGrow(s.SequenceId, s.PromptIds.Length + s.Request.MaxTokens));
            Assert.True(toEnd <= blocks.NumFreeBlocks, $"running requests need {toEnd} more blocks, {blocks.NumFreeBlocks} free");
        });

        Assert.Equal(0, scheduler.NumPreemptions);
        Assert.Equal(all.Sum(s => s.PromptIds.Length), steps.Sum(p => p.Prefills.Sum(c => c.TokenIds.Length)));
        Assert.All(all, s => Assert.Equal(s.Request.MaxTokens, s.OutputIds.Count));
        Assert.Equal(24, blocks.NumFreeBlocks);
        Assert.True(steps.Max(p => p.DecodeRows.Length + p.Prefills.Length) > 3, "several requests ran at once");
    }

    /// <summary>Steps until every sequence has its max_tokens, finishing each as it gets them; which step admitted each.</summary>
    private static List<StepPlan> RunToTheEnd(Scheduler scheduler, List<Sequence> all, out Dictionary<long, int> admittedAt, Action? afterEachStep = null)
    {
        var steps = new List<StepPlan>();
        admittedAt = [];
        while (scheduler.HasWork)
        {
            Assert.True(steps.Count < 10_000, "the run ends");
            var plan = scheduler.Schedule();
            foreach (var chunk in plan.Prefills.Where(c => c.PastLength == 0))
            {
                admittedAt.TryAdd(chunk.SequenceId, steps.Count + 1);
            }
            Apply(plan, all, token: 7);
            steps.Add(plan);
            foreach (var done in scheduler.Running.Where(s => s.OutputIds.Count >= s.Request.MaxTokens).ToList())
            {
                scheduler.Finish(done);
            }
            afterEachStep?.Invoke();
        }
        return steps;
    }
}

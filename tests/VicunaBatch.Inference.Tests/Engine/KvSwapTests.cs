using VicunaBatch.Inference.Engine;
using static VicunaBatch.Inference.Tests.Engine.SchedulerSteps;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// Preemption to host memory (<see cref="EngineOptions.KvSwapSpaceBytes"/>): a preempted request's KV blocks are copied
/// to host blocks and back into new device blocks when it resumes, so nothing is recomputed; where the host blocks are
/// short, preemption recomputes as before. The block tables' bookkeeping, the engine over <see cref="FakePagedRunner"/>
/// (which reads every request's history back through its blocks each step); the KV memory's copies are in <see cref="KvCopyTests"/>.
/// </summary>
public sealed class KvSwapTests
{
    private static readonly ModelVocabulary Vocabulary = new([2], null);

    [Fact]
    public void BlockTables_swapOutThenIn_copiesTheComputedRowsOutAndBackIntoNewBlocks_andFreesBoth()
    {
        var tables = new BlockTables(numBlocks: 6, blockSize: 4, maxLength: 24, numSwapBlocks: 3);
        Assert.True(tables.TryReserve(7, 12)); // 3 blocks; 10 of its tokens computed
        var held = tables.BlocksOf(7);

        Assert.True(tables.TrySwapOut(7, 10, out var outs));

        Assert.Equal([new KvUnitCopy(held[0], 0, 4), new KvUnitCopy(held[1], 1, 4), new KvUnitCopy(held[2], 2, 2)], outs.ToArray());
        Assert.True(tables.IsSwappedOut(7));
        Assert.Equal((6, 0), (tables.NumFreeBlocks, tables.NumFreeSwapBlocks));
        Assert.True(tables.TryReserve(8, 8)); // another request takes two of the blocks it left

        Assert.True(tables.TrySwapIn(7, 11, out var ins)); // its 10 tokens and this step's one

        var table = tables.BlocksOf(7);
        Assert.Equal([new KvUnitCopy(0, table[0], 4), new KvUnitCopy(1, table[1], 4), new KvUnitCopy(2, table[2], 2)], ins.ToArray());
        Assert.Empty(table.Intersect(tables.BlocksOf(8)));
        Assert.False(tables.IsSwappedOut(7));
        Assert.Equal((1, 3), (tables.NumFreeBlocks, tables.NumFreeSwapBlocks));
    }

    [Fact]
    public void BlockTables_swapWhereTheBlocksAreShort_isRefusedAndChangesNothing()
    {
        var tables = new BlockTables(numBlocks: 6, blockSize: 4, maxLength: 24, numSwapBlocks: 2);
        Assert.True(tables.TryReserve(1, 12));
        Assert.False(tables.TrySwapOut(1, 9, out var none)); // 3 blocks, 2 host blocks
        Assert.Empty(none);
        Assert.Equal((3, 2), (tables.BlocksOf(1).Length, tables.NumFreeSwapBlocks));
        Assert.False(new BlockTables(6, 4, 24).TrySwapOut(1, 4, out _)); // no host blocks at all

        Assert.True(tables.TrySwapOut(1, 8, out _)); // its 8 computed tokens fill 2
        Assert.True(tables.TryReserve(2, 24)); // the whole pool
        Assert.False(tables.TrySwapIn(1, 9, out _));
        Assert.True(tables.IsSwappedOut(1));
        Assert.Equal(0, tables.NumFreeSwapBlocks);

        tables.Free(1); // ended while swapped out: its host blocks go back
        Assert.Equal((false, 2), (tables.IsSwappedOut(1), tables.NumFreeSwapBlocks));
    }

    [Fact]
    public void Scheduler_onDemandWithSwapSpace_preemptsToHost_andResumesWithoutRecomputing()
    {
        var blocks = new BlockTables(numBlocks: 8, blockSize: 4, maxLength: 32, numSwapBlocks: 8);
        var scheduler = new Scheduler(blocks, 4, 32, AdmissionOrder.Arrival, KvAdmission.OnDemand);
        var all = Enumerable.Range(0, 3).Select(i => NewSequence(i, promptLength: 6, maxTokens: 10)).ToList();
        all.ForEach(scheduler.Add);
        var plans = new List<StepPlan>();

        while (scheduler.HasWork)
        {
            Assert.True(plans.Count < 1000, "the run ends");
            var plan = scheduler.Schedule();
            Apply(plan, all, token: 7);
            plans.Add(plan);
            foreach (var done in scheduler.Running.Where(s => s.OutputIds.Count >= s.Request.MaxTokens).ToList())
            {
                scheduler.Finish(done);
            }
        }

        Assert.True(scheduler.NumSwapOuts > 0, "nobody was preempted: the test does not test swapping");
        Assert.Equal(0, scheduler.NumPreemptions);
        Assert.Equal(6 * 3, plans.Sum(p => p.Prefills.Sum(c => c.TokenIds.Length))); // every prompt computed once
        Assert.Equal(plans.Sum(p => p.SwapOuts.Length), plans.Sum(p => p.SwapIns.Length));
        Assert.All(all, s => Assert.Equal(10, s.OutputIds.Count));
        Assert.Equal((8, 8), (blocks.NumFreeBlocks, blocks.NumFreeSwapBlocks));
    }

    [Fact]
    public void Scheduler_swapThatDoesNotPay_recomputesThoughTheHostBlocksHaveRoom()
    {
        var blocks = new BlockTables(numBlocks: 8, blockSize: 4, maxLength: 32, numSwapBlocks: 8);
        var scheduler = new Scheduler(blocks, 4, 32, AdmissionOrder.Arrival, KvAdmission.OnDemand, swapPays: () => false);
        var all = Enumerable.Range(0, 3).Select(i => NewSequence(i, promptLength: 6, maxTokens: 10)).ToList();
        all.ForEach(scheduler.Add);

        for (var step = 0; scheduler.HasWork; step++)
        {
            Assert.True(step < 1000, "the run ends");
            var plan = scheduler.Schedule();
            Assert.Empty(plan.SwapOuts);
            Apply(plan, all, token: 7);
            foreach (var done in scheduler.Running.Where(s => s.OutputIds.Count >= s.Request.MaxTokens).ToList()) scheduler.Finish(done);
        }

        Assert.Equal(0, scheduler.NumSwapOuts);
        Assert.True(scheduler.NumPreemptions > 0);
    }

    [Fact]
    public void SwapPays_comparesTheMeasuredSwapTimeOfATokenWithTheComputeTimeOfAPromptToken()
    {
        var statistics = new EngineStatistics();
        var cost = new StepCost(WeightBytes: 1000, KvBytesPerToken: 10, WeightElementBytes: 2, AttentionFlopsPerPair: 3);
        var prefill = new StepPlan([], [new PrefillChunk(1, 0, [.. Enumerable.Range(1, 100)], true, new KvBlockTable([0]))]);
        var swap = new StepPlan([], []) { SwapOuts = [new KvUnitCopy(0, 0, 50), new KvUnitCopy(1, 1, 50)] };
        Assert.True(statistics.SwapPays); // nothing measured yet: the first preemption swaps

        statistics.Record(prefill, 1, 4, TimeSpan.FromMilliseconds(10), cost: cost); // 0.1 ms a token computed
        Assert.True(statistics.SwapPays);
        statistics.RecordSwaps(swap, TimeSpan.FromMilliseconds(5), numSwapOuts: 1); // 0.05 ms a token swapped
        Assert.True(statistics.SwapPays);
        statistics.RecordSwaps(swap, TimeSpan.FromMilliseconds(30), numSwapOuts: 2); // 35 ms for 200 tokens: 0.175 ms a token
        Assert.False(statistics.SwapPays);
        Assert.Equal((200, 4, 2), (statistics.NumSwappedOutTokens, statistics.NumSwappedOutBlocks, statistics.NumSwapOuts));
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(2, false)]
    [InlineData(24, false)]
    [InlineData(24, true)]
    public void Generate_tightPoolOnDemand_everyRequestGetsItsOwnIds_andHostBlocksForAllMeanNothingRecomputed(int numSwapBlocks, bool prefixCache)
    {
        // 6 blocks of 4 tokens hold 24 tokens; 5 requests of up to 8 + 12 tokens need far more at once
        var requests = PagedEngineTests.FiveRequests();
        var runner = new FakePagedRunner(numBlocks: 6, blockSize: 4, maxBatchSize: 4, maxLength: 24, numSwapBlocks: numSwapBlocks);
        var engine = new InferenceEngine(runner, runner.NewBlockTables(prefixCache),
            new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 8, Admission = AdmissionOrder.Arrival, KvAdmission = KvAdmission.OnDemand }, Vocabulary);

        var results = EngineRuns.RunTogether(engine, requests);

        foreach (var request in requests)
        {
            Assert.Equal(FakePagedRunner.Expected(request), results[request.Id].OutputIds);
        }
        var statistics = engine.Statistics;
        Assert.True(statistics.NumPreemptions + statistics.NumSwapOuts > 0, "the pool never ran out: the test does not test preemption");
        Assert.Equal(statistics.NumSwappedOutBlocks, runner.Swaps.Count(s => s.Out));
        if (numSwapBlocks == 0)
        {
            Assert.Empty(runner.Swaps);
        }
        if (numSwapBlocks >= 24)
        {
            // a request holds at most 24 tokens (6 blocks): host blocks for everyone, so every preemption swapped
            Assert.Equal(0, statistics.NumPreemptions);
            Assert.True(statistics.NumSwapOuts > 0);
            Assert.Equal(requests.Sum(r => r.PromptIds.Count), statistics.NumPrefillTokens + statistics.NumCachedPromptTokens);
            Assert.Equal(runner.Swaps.Count(s => s.Out), runner.Swaps.Count(s => !s.Out)); // each came back
        }
    }

    [Fact]
    public void Cancel_whileSwappedOut_givesItsHostBlocksBack()
    {
        var runner = new FakePagedRunner(numBlocks: 6, blockSize: 4, maxBatchSize: 4, maxLength: 24, numSwapBlocks: 24);
        var tables = runner.NewBlockTables();
        var engine = new InferenceEngine(runner, tables,
            new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 8, Admission = AdmissionOrder.Arrival, KvAdmission = KvAdmission.OnDemand }, Vocabulary);
        var ids = PagedEngineTests.FiveRequests().Select(engine.Submit).ToList();
        var steps = 0;
        while (tables.NumFreeSwapBlocks == 24)
        {
            Assert.True(++steps < 200, "nobody was swapped out");
            engine.Step();
        }

        foreach (var id in ids)
        {
            engine.Cancel(id);
        }
        engine.Step();

        Assert.False(engine.HasWork);
        Assert.Equal((24, 6), (tables.NumFreeSwapBlocks, tables.NumFreeBlocks));
    }
}

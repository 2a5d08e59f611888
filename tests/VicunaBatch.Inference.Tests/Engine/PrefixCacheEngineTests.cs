using VicunaBatch.Inference.Engine;
using static VicunaBatch.Inference.Tests.Engine.SchedulerSteps;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// The prefix cache through the scheduler (the engine's update done by hand, as in <see cref="PagedSchedulerTests"/>)
/// and through the engine over <see cref="FakePagedRunner"/>, whose blocks hold what each written token followed: a
/// request given another prompt's KV, or KV written after other tokens, reads other history and gets other ids.
/// </summary>
public sealed class PrefixCacheEngineTests
{
    private static readonly ModelVocabulary Vocabulary = new([2], null);

    private static readonly int[] Prefix = [.. Enumerable.Range(30, 13)]; // 3 whole blocks of 4 and one token

    [Fact]
    public void Schedule_preemptedRequest_takesItsOwnBlocksTheCacheStillHoldsAndPrefillsTheRest()
    {
        var (scheduler, blocks) = OverBlocks(numBlocks: 4, blockSize: 4, maxBatchSize: 4, maxLength: 16, maxScheduledTokens: 16, prefixCache: true);
        var a = NewSequence(0, promptLength: 6);
        var b = NewSequence(1, promptLength: 6);
        List<Sequence> all = [a, b];
        scheduler.Add(a);
        scheduler.Add(b);
        for (var token = 60; token < 63; token++)
        {
            Apply(scheduler.Schedule(), all, token, blocks); // 8 tokens each computed: 2 whole blocks each, cached
        }
        Assert.Equal(4, blocks.NumCachedBlocks);

        // A needs a 3rd block: B is preempted, its blocks stay cached, and A evicts B's last one (blocks 2 3: 3 first)
        Apply(scheduler.Schedule(), all, token: 63, blocks);
        Assert.Equal((SequenceStatus.Waiting, 9, 1L), (b.Status, b.NumPrefillTokens, blocks.NumEvictedBlocks));
        // B finds its first block (2), but the two more it needs are not there: it gives it back and waits
        var step5 = scheduler.Schedule();
        Apply(step5, all, token: 64, blocks);
        Assert.Equal((0, 1, SequenceStatus.Waiting), (step5.NumCachedTokens, step5.DecodeRows.Length, b.Status));
        scheduler.Finish(a); // A's block 3 holds 2 computed tokens: plain free; 1 and 0 cached, evictable after 2
        var step6 = scheduler.Schedule();

        Assert.Equal(["seq 1 past 4 [104 105 60 61 62] logits"], step6.Prefills.Select(p => $"seq {p.SequenceId} past {p.PastLength} [{string.Join(' ', p.TokenIds)}]{(p.NeedsLogits ? " logits" : "")}"));
        Assert.Equal(4, step6.NumCachedTokens);
        Assert.Equal([2, 3, 1], BlockTablesOf(step6)[1].ToArray()); // its own block 2, the free 3, then 1 evicted
        Assert.Equal(2L, blocks.NumEvictedBlocks);
        Apply(step6, all, token: 65, blocks);
        Assert.Equal([60, 61, 62, 65], b.OutputIds);
        Assert.Equal([(1L, 65, 9)], Decodes(scheduler.Schedule()));
    }

    [Fact]
    public void Generate_requestsOneAfterAnother_reuseTheSharedPrefixAndGetTheIdsTheyGetWithoutIt()
    {
        var requests = SharedPrefixRequests();
        var options = new EngineOptions { MaxBatchSize = 1, MaxScheduledTokens = 16, Admission = AdmissionOrder.Arrival };

        var on = Run(requests, options, prefixCache: true, numBlocks: 64, out var withCache, out _);
        var off = Run(requests, options, prefixCache: false, numBlocks: 64, out var without, out _);

        foreach (var request in requests)
        {
            Assert.Equal(FakePagedRunner.Expected(request), on[request.Id].OutputIds);
            Assert.Equal(FakePagedRunner.Expected(request), off[request.Id].OutputIds);
        }
        // each of the 7 later prompts of 15 to 21 tokens takes the 3 whole blocks of the prefix; "exact" (12 tokens, all
        // of them cached) takes 2, and computes its last block for its logits
        Assert.Equal(7 * 12 + 8, withCache.NumCachedPromptTokens);
        Assert.Equal(requests.Sum(r => r.PromptIds.Count), without.NumPrefillTokens);
        Assert.Equal(without.NumPrefillTokens - withCache.NumCachedPromptTokens, withCache.NumPrefillTokens);
        Assert.Equal((0L, 0L), (without.NumCachedPromptTokens, withCache.NumEvictedBlocks));
    }

    [Fact]
    public void Generate_requestsTogether_whoeverComesAfterThePrefixIsComputedReusesItAndTheIdsAreTheSame()
    {
        var requests = SharedPrefixRequests();
        var options = new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 16, Admission = AdmissionOrder.Arrival };

        var on = Run(requests, options, prefixCache: true, numBlocks: 64, out var withCache, out var runner);
        var off = Run(requests, options, prefixCache: false, numBlocks: 64, out var without, out _);

        foreach (var request in requests)
        {
            Assert.Equal(FakePagedRunner.Expected(request), on[request.Id].OutputIds);
            Assert.Equal(off[request.Id].OutputIds, on[request.Id].OutputIds);
        }
        Assert.True(withCache.NumCachedPromptTokens >= 12, $"{withCache.NumCachedPromptTokens} prompt tokens from the cache");
        Assert.Equal(without.NumPrefillTokens - withCache.NumCachedPromptTokens, withCache.NumPrefillTokens);
        // an admitted request's first chunk starts past its cached tokens
        Assert.Contains(runner.Plans.SelectMany(p => p.Prefills), p => p.PastLength == 12);
    }

    [Fact]
    public void Generate_manyRequestsOfThreeTemplatesInATightPool_preemptEvictAndStillMatchAndEveryBlockComesBack()
    {
        var requests = ThreeTemplates();
        var (results, engine, tables) = RunInTightPool(requests, KvAdmission.OnDemand);

        Assert.All(requests, request => Assert.Equal(FakePagedRunner.Expected(request), results[request.Id].OutputIds));
        var statistics = engine.Statistics;
        Assert.True(statistics.NumPreemptions > 0, "the pool never ran out: the test does not test preemption");
        Assert.True(statistics.NumEvictedBlocks > 0, "no cached block was evicted");
        Assert.True(statistics.NumCachedPromptTokens > 0, "nothing was taken from the cache");
        Assert.Equal(tables.NumEvictedBlocks, statistics.NumEvictedBlocks);
        Assert.Equal((0, 12), (engine.KvUsage.NumInUse, tables.NumFreeBlocks));
        Assert.All(Enumerable.Range(0, 12), block => Assert.Equal(0, tables.HoldersOf(block)));
    }

    [Fact]
    public void Generate_manyRequestsOfThreeTemplatesInATightPool_reserveAdmission_neverPreempts_takesTheCache_andEveryBlockComesBack()
    {
        // the requests and pool of the test above, admitted by the blocks each needs to its end beside the running ones
        var requests = ThreeTemplates();
        var (results, engine, tables) = RunInTightPool(requests, KvAdmission.Reserve);

        Assert.All(requests, request => Assert.Equal(FakePagedRunner.Expected(request), results[request.Id].OutputIds));
        var statistics = engine.Statistics;
        Assert.Equal(0, statistics.NumPreemptions);
        Assert.True(statistics.NumCachedPromptTokens > 0, "nothing was taken from the cache");
        Assert.Equal(requests.Sum(r => r.PromptIds.Count), statistics.NumPrefillTokens + statistics.NumCachedPromptTokens);
        Assert.Equal((0, 12), (engine.KvUsage.NumInUse, tables.NumFreeBlocks));
        Assert.All(Enumerable.Range(0, 12), block => Assert.Equal(0, tables.HoldersOf(block)));
    }

    /// <summary>The requests over 12 blocks of 4 with the prefix cache, 4 at once, 12 tokens a step.</summary>
    private static (Dictionary<string, GenerationResult> Results, InferenceEngine Engine, BlockTables Tables) RunInTightPool(
        List<GenerationRequest> requests, KvAdmission kvAdmission)
    {
        var options = new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 12, Admission = AdmissionOrder.Arrival, KvAdmission = kvAdmission };
        var runner = new FakePagedRunner(numBlocks: 12, blockSize: 4, maxBatchSize: 4, maxLength: 32);
        var tables = runner.NewBlockTables(prefixCache: true);
        var engine = new InferenceEngine(runner, tables, options, Vocabulary);
        return (EngineRuns.RunTogether(engine, requests), engine, tables);
    }

    /// <summary>40 requests of one of three templates (9, 6 and 12 tokens) and a tail of their own, 3 to 9 tokens out.</summary>
    private static List<GenerationRequest> ThreeTemplates()
    {
        int[][] templates = [[.. Enumerable.Range(10, 9)], [.. Enumerable.Range(40, 6)], [.. Enumerable.Range(70, 12)]];
        return [.. Enumerable.Range(0, 40)
            .Select(i => new GenerationRequest($"r{i}", [.. templates[i % 3], .. Enumerable.Range(i, 1 + i % 5).Select(t => 90 - t)],
                MaxTokens: 3 + i % 7, IgnoreEos: true))];
    }

    [Fact]
    public void NumChoices_promptOfACachedPrefix_forksTheSharedBlocksAndEachChoiceGetsItsIdsAlone()
    {
        var runner = new FakePagedRunner(numBlocks: 64, blockSize: 4, maxBatchSize: 8, maxLength: 64);
        var tables = runner.NewBlockTables(prefixCache: true);
        var engine = new InferenceEngine(runner, tables, new EngineOptions { MaxBatchSize = 8, MaxScheduledTokens = 32, Admission = AdmissionOrder.Arrival }, Vocabulary);
        EngineRuns.RunTogether(engine, [new GenerationRequest("first", [.. Prefix, 1], MaxTokens: 2, IgnoreEos: true)]);
        var request = new GenerationRequest("n", [.. Prefix, 2, 3], MaxTokens: 6, new SamplingParams(Temperature: 1f, Seed: 11), IgnoreEos: true, NumChoices: 4);

        engine.Submit(request);
        var choices = new List<GenerationResult>();
        while (engine.HasWork) choices.AddRange(engine.Step());

        Assert.Equal(12, engine.Statistics.NumCachedPromptTokens);
        Assert.Equal(3, engine.Statistics.NumForkedChoices);
        Assert.Equal(14 + 3, engine.Statistics.NumPrefillTokens); // "first" whole, then the 3 tokens past the cached blocks once
        foreach (var choice in choices)
        {
            var alone = request with { NumChoices = 1, Sampling = request.Sampling!.ForChoice(choice.Choice) };
            var reference = new FakePagedRunner(numBlocks: 64, blockSize: 4, maxBatchSize: 8, maxLength: 64);
            var separate = EngineRuns.RunTogether(new InferenceEngine(reference, reference.NewBlockTables(), new EngineOptions { MaxBatchSize = 8, MaxScheduledTokens = 32 }, Vocabulary), [alone]);
            Assert.Equal(separate["n"].OutputIds, choice.OutputIds);
        }
        Assert.Equal(4, choices.Select(c => string.Join(',', c.OutputIds)).Distinct().Count());
        Assert.Equal(0, engine.KvUsage.NumInUse);
    }

    /// <summary>Eight prompts of <see cref="Prefix"/> and 1 to 7 tokens each, and one of its first 12 tokens alone (all whole blocks).</summary>
    private static List<GenerationRequest> SharedPrefixRequests() =>
    [
        .. Enumerable.Range(0, 8).Select(i => new GenerationRequest($"r{i}", [.. Prefix, .. Enumerable.Range(50 + 5 * i, 1 + i)], MaxTokens: 6, IgnoreEos: true)),
        new GenerationRequest("exact", Prefix[..12], MaxTokens: 6, IgnoreEos: true),
    ];

    private static Dictionary<string, GenerationResult> Run(List<GenerationRequest> requests, EngineOptions options, bool prefixCache, int numBlocks,
        out EngineStatistics statistics, out FakePagedRunner runner)
    {
        runner = new FakePagedRunner(numBlocks, blockSize: 4, maxBatchSize: options.MaxBatchSize, maxLength: 64);
        var engine = new InferenceEngine(runner, runner.NewBlockTables(prefixCache), options, Vocabulary);
        var results = EngineRuns.RunTogether(engine, requests);
        statistics = engine.Statistics;
        Assert.Equal(0, engine.KvUsage.NumInUse);
        return results;
    }

}

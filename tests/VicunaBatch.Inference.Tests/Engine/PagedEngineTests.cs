using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// The engine over a paged KV cache (<see cref="FakePagedRunner"/>: real block bookkeeping, a deterministic "model"):
/// one call per step packs decodes and prefill chunks, and preemption by recompute changes no request's output.
/// </summary>
public sealed class PagedEngineTests
{
    private static readonly ModelVocabulary Vocabulary = new([2], null);

    [Fact]
    public void Generate_tightPool_preemptsYetEveryRequestGetsTheIdsItGetsAlone()
    {
        // 6 blocks of 4 tokens hold 24 tokens; 5 requests of up to 8 + 12 tokens need far more at once
        var requests = Enumerable.Range(0, 5)
            .Select(i => new GenerationRequest($"r{i}", Enumerable.Range(3 + i, 4 + i).ToArray(), MaxTokens: 12 - i, IgnoreEos: true))
            .ToList();
        var options = new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 8, Admission = AdmissionOrder.Arrival };
        var tight = new FakePagedRunner(numBlocks: 6, blockSize: 4, maxBatchSize: 4, maxLength: 24);

        var results = Run(Engine(tight, options), requests, out var statistics);

        Assert.True(statistics.NumPreemptions > 0, "the pool never ran out: the test does not test preemption");
        foreach (var request in requests)
        {
            Assert.Equal(Expected(request), results[request.Id].OutputIds);
            Assert.Equal(FinishReason.Length, results[request.Id].FinishReason);
        }
        Assert.All(tight.Plans, plan => Assert.True(plan.NumScheduledTokens <= 8));
        Assert.All(tight.Plans, plan => Assert.True(plan.DecodeRows.Length + plan.Prefills.Length <= 4));
        // recomputed tokens are prefilled again: more prefill than prompts
        Assert.True(statistics.NumPrefillTokens > requests.Sum(r => r.PromptIds.Count));
    }

    [Fact]
    public void Generate_roomyPool_oneStepMixesDecodesWithANewPromptAndNeverPreempts()
    {
        var engine = Engine(new FakePagedRunner(numBlocks: 64, blockSize: 4, maxBatchSize: 8, maxLength: 64),
            new EngineOptions { MaxBatchSize = 8, MaxScheduledTokens = 32, Admission = AdmissionOrder.Arrival });
        var first = new GenerationRequest("first", [5, 6, 7], MaxTokens: 6, IgnoreEos: true);
        var second = new GenerationRequest("second", [9, 9, 9, 9, 9], MaxTokens: 6, IgnoreEos: true);
        engine.Submit(first);
        Assert.Empty(engine.Step());
        engine.Submit(second);
        Assert.Empty(engine.Step()); // first decodes while second's prompt is prefilled, in the same step

        var results = Run(engine, [], out var statistics);

        Assert.Equal(Expected(first), results["first"].OutputIds);
        Assert.Equal(Expected(second), results["second"].OutputIds);
        Assert.Equal(0, statistics.NumPreemptions);
        Assert.Equal(3 + 5, statistics.NumPrefillTokens);
    }

    [Fact]
    public void Generate_runnerPickingTheArgmaxOnTheDevice_greedyRequestsTakeItsIdsAndTheOthersStillGetLogits()
    {
        var runner = new FakePagedRunner(numBlocks: 64, blockSize: 4, maxBatchSize: 8, maxLength: 64, greedyOnDevice: true);
        var engine = Engine(runner, new EngineOptions { MaxBatchSize = 8, MaxScheduledTokens = 32, Admission = AdmissionOrder.Arrival });
        var greedy = new GenerationRequest("greedy", [5, 6, 7], MaxTokens: 6, IgnoreEos: true);
        // a temperature this low picks the largest logit (e^100 against the rest): it samples, from real logits
        var sampled = new GenerationRequest("sampled", [8, 8, 8], MaxTokens: 6, IgnoreEos: true, Sampling: new SamplingParams(Temperature: 0.01f, Seed: 7));
        var withLogits = new GenerationRequest("logits", [4, 3], MaxTokens: 6, IgnoreEos: true, ReturnLogits: true);

        var results = Run(engine, [greedy, sampled, withLogits], out _);

        Assert.Equal(Expected(greedy), results["greedy"].OutputIds);
        Assert.Equal(Expected(sampled), results["sampled"].OutputIds);
        Assert.Equal(Expected(withLogits), results["logits"].OutputIds);
        Assert.Equal(6, results["logits"].Logits!.Count);
        var sequenceIds = runner.Plans.SelectMany(p => p.GraphPicks.Keys).Distinct().ToList();
        Assert.Single(sequenceIds); // only the greedy request was left to the device's argmax
        Assert.All(runner.Plans.Where(p => p.GraphPicks.Count > 0), p => Assert.True(p.GraphPicks[sequenceIds[0]].Sampling.IsGreedy));
    }

    [Fact]
    public void KvUsage_followsTheBlocksOfTheRunningRequests()
    {
        var engine = Engine(new FakePagedRunner(numBlocks: 16, blockSize: 4, maxBatchSize: 4, maxLength: 32),
            new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 32, Admission = AdmissionOrder.Arrival });
        Assert.Equal(new KvCacheUsage(KvUnit.Block, NumUnits: 16, UnitTokens: 4, NumInUse: 0), engine.KvUsage);
        engine.Submit(new GenerationRequest("a", [1, 2, 3, 4, 5], MaxTokens: 4, IgnoreEos: true)); // 5 prompt tokens: 2 blocks
        engine.Step();
        Assert.Equal(2, engine.KvUsage.NumInUse);
        Run(engine, [], out _);
        Assert.Equal(0, engine.KvUsage.NumInUse);
    }

    [Fact]
    public void Cancel_preemptedRequest_returnsItsOutputSoFar()
    {
        var runner = new FakePagedRunner(numBlocks: 4, blockSize: 4, maxBatchSize: 2, maxLength: 16);
        var engine = Engine(runner, new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 16, Admission = AdmissionOrder.Arrival });
        engine.Submit(new GenerationRequest("old", [1, 2, 3, 4, 5, 6], MaxTokens: 10, IgnoreEos: true));
        var young = new GenerationRequest("young", [7, 8, 9, 10, 11, 12], MaxTokens: 10, IgnoreEos: true);
        var youngId = engine.Submit(young);
        for (var step = 0; step < 4; step++)
        {
            Assert.Empty(engine.Step()); // the 4th step needs a 3rd block for "old": "young" is preempted
        }
        Assert.Equal(1, engine.Statistics.NumPreemptions);

        Assert.True(engine.Cancel(youngId));
        var cancelled = Assert.Single(engine.Step());

        Assert.Equal(("young", FinishReason.Cancelled), (cancelled.Id, cancelled.FinishReason));
        Assert.Equal(Expected(young).Take(3), cancelled.OutputIds);
    }

    private static InferenceEngine Engine(FakePagedRunner runner, EngineOptions options) =>
        new(runner, runner.NewBlockTables(), options, Vocabulary);

    /// <summary>The ids <see cref="FakePagedRunner"/>'s model generates for a request, computed without the engine.</summary>
    private static List<int> Expected(GenerationRequest request)
    {
        var history = request.PromptIds.ToList();
        var output = new List<int>();
        while (output.Count < request.MaxTokens)
        {
            var next = FakePagedRunner.NextToken(history);
            output.Add(next);
            history.Add(next);
        }
        return output;
    }

    private static Dictionary<string, GenerationResult> Run(InferenceEngine engine, IReadOnlyList<GenerationRequest> requests, out EngineStatistics statistics)
    {
        foreach (var request in requests)
        {
            engine.Submit(request);
        }
        var results = new Dictionary<string, GenerationResult>();
        for (var step = 0; engine.HasWork; step++)
        {
            foreach (var result in engine.Step())
            {
                results.Add(result.Id, result);
            }
            Assert.True(step < 10_000, "engine did not finish");
        }
        statistics = engine.Statistics;
        return results;
    }
}

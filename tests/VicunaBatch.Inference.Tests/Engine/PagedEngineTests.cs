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
        var requests = FiveRequests();
        var options = new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 8, Admission = AdmissionOrder.Arrival, KvAdmission = KvAdmission.OnDemand };
        var tight = new FakePagedRunner(numBlocks: 6, blockSize: 4, maxBatchSize: 4, maxLength: 24);

        var results = Run(Engine(tight, options), requests, out var statistics);

        Assert.True(statistics.NumPreemptions > 0, "the pool never ran out: the test does not test preemption");
        foreach (var request in requests)
        {
            Assert.Equal(FakePagedRunner.Expected(request), results[request.Id].OutputIds);
            Assert.Equal(FinishReason.Length, results[request.Id].FinishReason);
        }
        Assert.All(tight.Plans, plan => Assert.True(plan.NumScheduledTokens <= 8));
        Assert.All(tight.Plans, plan => Assert.True(plan.DecodeRows.Length + plan.Prefills.Length <= 4));
        // recomputed tokens are prefilled again: more prefill than prompts
        Assert.True(statistics.NumPrefillTokens > requests.Sum(r => r.PromptIds.Count));
    }

    [Fact]
    public void Generate_tightPool_reserveAdmission_neverPreempts_computesEachPromptOnce_andGetsTheSameIds()
    {
        // the requests of the test above, each 16 tokens (4 blocks) to its end, over 8 blocks: two run at once
        var requests = FiveRequests();
        var options = new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 8, Admission = AdmissionOrder.Arrival, KvAdmission = KvAdmission.Reserve };
        var tight = new FakePagedRunner(numBlocks: 8, blockSize: 4, maxBatchSize: 4, maxLength: 24);

        var results = Run(Engine(tight, options), requests, out var statistics);

        Assert.Equal(0, statistics.NumPreemptions);
        Assert.Equal(requests.Sum(r => r.PromptIds.Count), statistics.NumPrefillTokens);
        foreach (var request in requests)
        {
            Assert.Equal(FakePagedRunner.Expected(request), results[request.Id].OutputIds);
        }
        Assert.Contains(tight.Plans, plan => plan.DecodeRows.Length + plan.Prefills.Length > 1); // still batched
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

        Assert.Equal(FakePagedRunner.Expected(first), results["first"].OutputIds);
        Assert.Equal(FakePagedRunner.Expected(second), results["second"].OutputIds);
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

        Assert.Equal(FakePagedRunner.Expected(greedy), results["greedy"].OutputIds);
        Assert.Equal(FakePagedRunner.Expected(sampled), results["sampled"].OutputIds);
        Assert.Equal(FakePagedRunner.Expected(withLogits), results["logits"].OutputIds);
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
        var engine = Engine(runner, new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 16, Admission = AdmissionOrder.Arrival, KvAdmission = KvAdmission.OnDemand });
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
        Assert.Equal(FakePagedRunner.Expected(young).Take(3), cancelled.OutputIds);
    }

    [Theory]
    [InlineData(10)] // the prompt ends inside a block: each fork copies that block's rows into one of its own
    [InlineData(8)]  // it ends on a block boundary: the forks share every block and copy nothing
    public void NumChoices_sampled_oneSharedPrefillAndEachChoiceGetsTheIdsItGetsAloneWithItsSeed(int promptLength)
    {
        var runner = new FakePagedRunner(numBlocks: 64, blockSize: 4, maxBatchSize: 8, maxLength: 64);
        var engine = Engine(runner, new EngineOptions { MaxBatchSize = 8, MaxScheduledTokens = 32, Admission = AdmissionOrder.Arrival });
        var prompt = Enumerable.Range(3, promptLength).ToArray();
        // the fake's logits are one-hot: at temperature 1 every token has a few per cent, so the choices part at once
        var request = new GenerationRequest("n", prompt, MaxTokens: 6, new SamplingParams(Temperature: 1f, Seed: 11), IgnoreEos: true, NumChoices: 4);

        var choices = RunChoices(engine, request);

        Assert.Equal([0, 1, 2, 3], choices.Select(c => c.Choice));
        Assert.Equal(promptLength, engine.Statistics.NumPrefillTokens); // the prompt was computed once
        Assert.Equal((3, 3L * promptLength), (engine.Statistics.NumForkedChoices, engine.Statistics.NumForkedTokens));
        Assert.All(runner.Forks, fork => Assert.Equal(promptLength % 4 == 0 ? 0 : 1, fork.Copies.Length));
        for (var choice = 0; choice < 4; choice++)
        {
            Assert.Equal(Alone(request, choice, blocks: 64), choices[choice].OutputIds);
        }
        Assert.Equal(4, choices.Select(c => string.Join(',', c.OutputIds)).Distinct().Count());
        Assert.Equal(0, engine.KvUsage.NumInUse); // every shared block went back once its last holder ended
    }

    [Fact]
    public void NumChoices_moreThanThePoolHoldsToTheirEnd_reserveAdmitsTheRequestAndEveryChoiceEnds()
    {
        // 8 blocks of 4 hold one request of 32 tokens; 4 choices of 5 + 20 tokens would need 4 × 7 blocks to their ends
        var runner = new FakePagedRunner(numBlocks: 8, blockSize: 4, maxBatchSize: 4, maxLength: 32);
        var engine = Engine(runner, new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 32, Admission = AdmissionOrder.Arrival, KvAdmission = KvAdmission.Reserve });
        var request = new GenerationRequest("n", [5, 6, 7, 8, 9], MaxTokens: 20, new SamplingParams(Temperature: 1f, Seed: 5), IgnoreEos: true, NumChoices: 4);

        var choices = RunChoices(engine, request);

        Assert.Equal([0, 1, 2, 3], choices.Select(c => c.Choice));
        for (var choice = 0; choice < 4; choice++)
        {
            Assert.Equal(Alone(request, choice, blocks: 64), choices[choice].OutputIds);
        }
    }

    [Fact]
    public void NumChoices_batchFullAtTheFork_theRestComputeThePromptThemselvesAndStillMatch()
    {
        var runner = new FakePagedRunner(numBlocks: 64, blockSize: 4, maxBatchSize: 2, maxLength: 64);
        var engine = Engine(runner, new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 32, Admission = AdmissionOrder.Arrival });
        var request = new GenerationRequest("n", [5, 6, 7, 8, 9], MaxTokens: 5, new SamplingParams(Temperature: 1f, Seed: 3), IgnoreEos: true, NumChoices: 4);

        var choices = RunChoices(engine, request);

        Assert.Equal(1, engine.Statistics.NumForkedChoices); // room for one more in a batch of 2
        Assert.Equal(3 * 5, engine.Statistics.NumPrefillTokens);
        for (var choice = 0; choice < 4; choice++)
        {
            Assert.Equal(Alone(request, choice, blocks: 64), choices[choice].OutputIds);
        }
    }

    [Fact]
    public void NumChoices_admissionKeepsBatchPlacesForTheChoicesSoEveryOneOfThemForks()
    {
        var engine = Engine(new FakePagedRunner(numBlocks: 64, blockSize: 4, maxBatchSize: 8, maxLength: 64),
            new EngineOptions { MaxBatchSize = 8, MaxScheduledTokens = 32, Admission = AdmissionOrder.Arrival });
        var sampling = new SamplingParams(Temperature: 1f, Seed: 1);
        GenerationRequest[] requests =
        [
            new("a", [1, 2, 3, 4, 5], MaxTokens: 4, sampling, IgnoreEos: true, NumChoices: 4),
            new("b", [6, 7, 8], MaxTokens: 4, sampling, IgnoreEos: true, NumChoices: 4),
            new("c", [9, 10], MaxTokens: 4, sampling, IgnoreEos: true),
        ];
        foreach (var request in requests) engine.Submit(request);

        Assert.Empty(engine.Step()); // a and b take 4 places each; c waits for one
        Assert.Equal(8, engine.NumRunning);
        var results = new List<GenerationResult>();
        while (engine.HasWork) results.AddRange(engine.Step());

        Assert.Equal(6, engine.Statistics.NumForkedChoices);
        Assert.Equal(5 + 3 + 2, engine.Statistics.NumPrefillTokens);
        Assert.Equal(9, results.Count);
    }

    [Fact]
    public void NumChoices_tightPool_forkedChoicesArePreemptedAndRecomputedWithoutChangingTheirIds()
    {
        // 7 blocks of 4: three choices of 6 + 14 tokens (5 blocks each, 2 of them shared) cannot all grow
        var runner = new FakePagedRunner(numBlocks: 7, blockSize: 4, maxBatchSize: 4, maxLength: 24);
        var engine = Engine(runner, new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 8, Admission = AdmissionOrder.Arrival, KvAdmission = KvAdmission.OnDemand });
        var request = new GenerationRequest("n", [1, 2, 3, 4, 5, 6, 7, 8], MaxTokens: 14, new SamplingParams(Temperature: 1f, Seed: 5), IgnoreEos: true, NumChoices: 3);

        var choices = RunChoices(engine, request);

        Assert.True(engine.Statistics.NumPreemptions > 0, "the pool never ran out: the test does not test preemption of forks");
        Assert.True(engine.Statistics.NumForkedChoices > 0, "nothing was forked");
        for (var choice = 0; choice < 3; choice++)
        {
            Assert.Equal(Alone(request, choice, blocks: 7, maxLength: 24), choices[choice].OutputIds);
        }
        Assert.Equal(0, engine.KvUsage.NumInUse);
    }

    [Fact]
    public void NumChoices_cancelledBeforeTheFork_everyChoiceEndsCancelled()
    {
        var engine = Engine(new FakePagedRunner(numBlocks: 64, blockSize: 4, maxBatchSize: 4, maxLength: 64),
            new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 4, Admission = AdmissionOrder.Arrival });
        var id = engine.Submit(new GenerationRequest("n", [1, 2, 3, 4, 5, 6, 7, 8, 9], MaxTokens: 5, new SamplingParams(Temperature: 1f), NumChoices: 3));
        Assert.Empty(engine.Step()); // the first of three prompt chunks

        Assert.True(engine.Cancel(id));
        var results = engine.Step();

        Assert.Equal([0, 1, 2], results.Select(r => r.Choice).Order());
        Assert.All(results, r => Assert.Equal(("n", FinishReason.Cancelled), (r.Id, r.FinishReason)));
        Assert.False(engine.HasWork);
    }

    [Fact]
    public void NumChoices_cancelledAfterTheFork_cancelsEveryChoice()
    {
        var engine = Engine(new FakePagedRunner(numBlocks: 64, blockSize: 4, maxBatchSize: 8, maxLength: 64),
            new EngineOptions { MaxBatchSize = 8, MaxScheduledTokens = 32, Admission = AdmissionOrder.Arrival });
        var id = engine.Submit(new GenerationRequest("n", [1, 2, 3], MaxTokens: 9, new SamplingParams(Temperature: 1f), IgnoreEos: true, NumChoices: 3));
        Assert.Empty(engine.Step());
        Assert.Empty(engine.Step());

        Assert.True(engine.Cancel(id));
        var results = engine.Step();

        Assert.Equal([0, 1, 2], results.Select(r => r.Choice).Order());
        Assert.All(results, r => Assert.Equal((FinishReason.Cancelled, 2), (r.FinishReason, r.OutputIds.Count)));
        Assert.Equal(0, engine.KvUsage.NumInUse);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(GenerationRequest.MaxChoices + 1)]
    public void NumChoices_outsideOneTo128_failsWithAResultPerChoiceItAskedFor(int numChoices)
    {
        var engine = Engine(new FakePagedRunner(numBlocks: 64, blockSize: 4, maxBatchSize: 8, maxLength: 64),
            new EngineOptions { MaxBatchSize = 8, MaxScheduledTokens = 32, Admission = AdmissionOrder.Arrival });
        engine.Submit(new GenerationRequest("n", [1, 2, 3], MaxTokens: 4, NumChoices: numChoices));

        var results = engine.Step();

        Assert.Equal(Math.Max(1, numChoices), results.Count);
        Assert.All(results, r => Assert.Equal(GenerationErrorKind.InvalidRequest, r.ErrorKind));
        Assert.Contains("between 1 and 128", results[0].Error);
    }

    /// <summary>Choice <paramref name="choice"/> of <paramref name="request"/> run as a request of its own, with its seed, in an engine of its own.</summary>
    private static IReadOnlyList<int> Alone(GenerationRequest request, int choice, int blocks, int maxLength = 64)
    {
        var runner = new FakePagedRunner(numBlocks: blocks, blockSize: 4, maxBatchSize: 8, maxLength: maxLength);
        var engine = Engine(runner, new EngineOptions { MaxBatchSize = 8, MaxScheduledTokens = 32, Admission = AdmissionOrder.Arrival });
        var alone = request with { NumChoices = 1, Sampling = request.Sampling!.ForChoice(choice) };
        return Assert.Single(RunChoices(engine, alone)).OutputIds;
    }

    /// <summary>Runs one request to the end; its results in choice order.</summary>
    private static List<GenerationResult> RunChoices(InferenceEngine engine, GenerationRequest request)
    {
        engine.Submit(request);
        var results = new List<GenerationResult>();
        for (var step = 0; engine.HasWork; step++)
        {
            results.AddRange(engine.Step());
            Assert.True(step < 10_000, "engine did not finish");
        }
        Assert.All(results, r => Assert.Equal(request.Id, r.Id));
        return [.. results.OrderBy(r => r.Choice)];
    }

    /// <summary>5 requests of 4 to 8 prompt tokens and 12 to 8 out: far more than a pool of 6 blocks of 4 holds at once.</summary>
    internal static List<GenerationRequest> FiveRequests() =>
        [.. Enumerable.Range(0, 5).Select(i => new GenerationRequest($"r{i}", Enumerable.Range(3 + i, 4 + i).ToArray(), MaxTokens: 12 - i, IgnoreEos: true))];

    private static InferenceEngine Engine(FakePagedRunner runner, EngineOptions options) =>
        new(runner, runner.NewBlockTables(), options, Vocabulary);

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

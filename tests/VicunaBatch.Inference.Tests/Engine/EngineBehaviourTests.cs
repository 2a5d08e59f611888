using VicunaBatch.Inference.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>Request-level behaviour of the engine and its async host on the tiny random model (vocab 32000, EOS 2).</summary>
[Collection("models")]
public sealed class EngineBehaviourTests(ModelFixture models)
{
    private static readonly int[][] Prompts =
    [
        [1, 15043, 29892],
        [1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203],
        [1, 7],
        [1, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700, 1800, 1900],
        [1, 31999, 0, 5],
        [1, 42, 43, 44, 45, 46, 47],
    ];

    [Fact]
    public void Seeded_sampling_gives_the_same_ids_alone_as_among_five_other_requests_arriving_at_different_steps()
    {
        const int maxTokens = 24;
        var target = new SamplingParams(Temperature: 0.8f, TopP: 0.9f, Seed: 1234);
        var aloneOptions = new EngineOptions { MaxBatchSize = 1, MaxScheduledTokens = 64 };
        var alone = EngineGoldenTests.Generate(models.TinyPackage, [Prompts[1]], maxTokens, aloneOptions, _ => target)["p0"];

        using var model = LoadedModel.Open(models.TinyPackage, new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 8 });
        var engine = model.Engine;
        // (step, request): the target arrives at step 2, behind two others and mid-prefill of a long one
        var arrivals = new (int Step, GenerationRequest Request)[]
        {
            (0, Sampled("o0", Prompts[0], maxTokens: 30, seed: 1)),
            (0, Sampled("o3", Prompts[3], maxTokens: 10, seed: 2)),
            (2, new GenerationRequest("target", Prompts[1], maxTokens, target)),
            (3, Sampled("o2", Prompts[2], maxTokens: 5, seed: 3)),
            (5, Sampled("o4", Prompts[4], maxTokens: 40, seed: 4)),
            (9, Sampled("o5", Prompts[5], maxTokens: 12, seed: 5)),
        };
        var results = new Dictionary<string, GenerationResult>();
        for (var step = 0; results.Count < arrivals.Length; step++)
        {
            foreach (var (_, request) in arrivals.Where(a => a.Step == step))
            {
                engine.Submit(request);
            }
            foreach (var result in engine.Step())
            {
                results.Add(result.Id, result);
            }
            Assert.True(step < 1000, "engine did not finish");
        }

        Assert.Null(alone.Error);
        Assert.Equal(alone.OutputIds, results["target"].OutputIds);
        Assert.Equal(alone.FinishReason, results["target"].FinishReason);
        Assert.All(results.Values, r => Assert.Null(r.Error));
        // the seed, not greedy decoding, chose these ids
        var greedy = EngineGoldenTests.Generate(models.TinyPackage, [Prompts[1]], maxTokens, aloneOptions)["p0"];
        Assert.NotEqual(greedy.OutputIds, alone.OutputIds);
        var otherSeed = EngineGoldenTests.Generate(models.TinyPackage, [Prompts[1]], maxTokens, aloneOptions, _ => target with { Seed = 1235 })["p0"];
        Assert.NotEqual(otherSeed.OutputIds, alone.OutputIds);
    }

    [Fact]
    public async Task GenerateChoicesAsync_threeSampledChoices_oneComputedPromptCopiedIntoSlotsAndEachChoiceAsItIsAlone()
    {
        const int maxTokens = 16;
        var sampling = new SamplingParams(Temperature: 0.9f, Seed: 77);
        using var model = LoadedModel.Open(models.TinyPackage, new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 64 });
        await using var host = new EngineHost(model.Engine, ownsEngine: false);

        var choices = await host.GenerateChoicesAsync(new GenerationRequest("n", Prompts[3], maxTokens, sampling, NumChoices: 3));

        Assert.Equal([0, 1, 2], choices.Select(c => c.Choice));
        Assert.All(choices, c => Assert.Equal(("n", null), (c.Id, c.Error)));
        Assert.Equal(Prompts[3].Length, model.Engine.Statistics.NumPrefillTokens); // computed once, in slot 0
        Assert.Equal(2, model.Engine.Statistics.NumForkedChoices);                 // copied into slots 1 and 2
        var aloneOptions = new EngineOptions { MaxBatchSize = 1, MaxScheduledTokens = 64 };
        for (var choice = 0; choice < 3; choice++)
        {
            var alone = EngineGoldenTests.Generate(models.TinyPackage, [Prompts[3]], maxTokens, aloneOptions, _ => sampling.ForChoice(choice))["p0"];
            Assert.Equal(alone.OutputIds, choices[choice].OutputIds);
        }
        Assert.Equal(3, choices.Select(c => string.Join(',', c.OutputIds)).Distinct().Count());
        await Assert.ThrowsAsync<ArgumentException>(() => host.GenerateAsync(new GenerationRequest("n", Prompts[3], maxTokens, sampling, NumChoices: 2)));
    }

    [Fact]
    public void Submit_promptAsLongAsTheContext_failsAloneWhileOthersComplete()
    {
        using var model = LoadedModel.Open(models.TinyPackage, new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 16, MaxSequenceLength = 64 });
        var engine = model.Engine;
        engine.Submit(Greedy("short0", Prompts[0], maxTokens: 5));
        engine.Submit(Greedy("long", Enumerable.Range(100, 64).ToArray(), maxTokens: 5));
        engine.Submit(Greedy("short1", Prompts[2], maxTokens: 5));

        var first = engine.Step();
        var results = RunToEnd(engine);

        var failed = Assert.Single(first);
        Assert.Equal("long", failed.Id);
        Assert.Equal(FinishReason.Error, failed.FinishReason);
        Assert.Equal("the prompt has 64 tokens; the context holds 64 (prompt + at least one generated token)", failed.Error);
        Assert.Empty(failed.OutputIds);
        Assert.Equal(64, failed.PromptTokens);
        Assert.Equal(["short0", "short1"], results.Keys.Order());
        Assert.All(results.Values, r => Assert.Equal((FinishReason.Length, 5, null), (r.FinishReason, r.OutputIds.Count, r.Error)));
    }

    [Fact]
    public void Submit_maxTokens7_endsWithLengthAndExactly7Ids()
    {
        var results = Generate(options: new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 16 },
            Greedy("a", Prompts[1], maxTokens: 7, ignoreEos: true), Greedy("b", Prompts[2], maxTokens: 1, ignoreEos: true));

        Assert.Equal(FinishReason.Length, results["a"].FinishReason);
        Assert.Equal(7, results["a"].OutputIds.Count);
        Assert.Equal(12, results["a"].PromptTokens);
        Assert.Equal(FinishReason.Length, results["b"].FinishReason);
        Assert.Single(results["b"].OutputIds);
    }

    [Fact]
    public void Submit_maxTokensPastTheContext_endsWithLengthWhenPromptPlusOutputFillsIt()
    {
        var results = Generate(options: new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 8, MaxSequenceLength = 32 },
            Greedy("a", Prompts[1], maxTokens: 1000, ignoreEos: true), Greedy("b", Prompts[3], maxTokens: 1000, ignoreEos: true));

        Assert.Equal(FinishReason.Length, results["a"].FinishReason);
        Assert.Equal(32, Prompts[1].Length + results["a"].OutputIds.Count);
        Assert.Equal(FinishReason.Length, results["b"].FinishReason);
        Assert.Equal(32, Prompts[3].Length + results["b"].OutputIds.Count);
    }

    [Fact]
    public void IgnoreEos_keepsGeneratingPastTheEosThatEndsTheSameRequestOtherwise()
    {
        // sampled stories260K (seed 2) hits EOS (2) after 255 ids; the random tiny model almost never samples it.
        // One draw per token: with IgnoreEos the same seed samples the same ids up to and including the EOS.
        var sampling = new SamplingParams(Temperature: 1f, Seed: 2);
        var options = new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 64 };
        using var model = LoadedModel.Open(models.StoriesPackage, options);
        model.Engine.Submit(new GenerationRequest("stop", [1], 400, sampling));
        model.Engine.Submit(new GenerationRequest("ignore", [1], 400, sampling, IgnoreEos: true));

        var results = RunToEnd(model.Engine);

        var stopped = results["stop"];
        var ignored = results["ignore"];
        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        var n = stopped.OutputIds.Count;
        Assert.DoesNotContain(2, stopped.OutputIds);
        Assert.Equal(FinishReason.Length, ignored.FinishReason);
        Assert.Equal(400, ignored.OutputIds.Count);
        Assert.Equal(stopped.OutputIds, ignored.OutputIds.Take(n));
        Assert.Equal(2, ignored.OutputIds[n]);
    }

    [Fact]
    public void Cancel_runningRequest_returnsCancelledWithTheIdsSoFarWhileTheOtherGoesOn()
    {
        var full = Generate(new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 32 }, Greedy("a", Prompts[0], 10, ignoreEos: true))["a"];
        using var model = LoadedModel.Open(models.TinyPackage, new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 32 });
        var engine = model.Engine;
        var a = engine.Submit(Greedy("a", Prompts[0], 10, ignoreEos: true));
        engine.Submit(Greedy("b", Prompts[1], 10, ignoreEos: true));
        // step 1 prefills both (one id each), steps 2 and 3 decode
        for (var step = 0; step < 3; step++)
        {
            Assert.Empty(engine.Step());
        }

        Assert.True(engine.Cancel(a));
        Assert.False(engine.Cancel(a));
        var cancelled = Assert.Single(engine.Step());
        var rest = RunToEnd(engine);

        Assert.Equal("a", cancelled.Id);
        Assert.Equal(FinishReason.Cancelled, cancelled.FinishReason);
        Assert.Equal("cancelled", cancelled.Error);
        Assert.Equal(full.OutputIds.Take(3), cancelled.OutputIds);
        Assert.Equal(FinishReason.Length, rest["b"].FinishReason);
        Assert.Equal(10, rest["b"].OutputIds.Count);
    }

    [Fact]
    public void Cancel_waitingRequest_returnsCancelledWithNoIds()
    {
        // arrival order, so that "b" (the longer prompt) is the one left waiting
        using var model = LoadedModel.Open(models.TinyPackage, new EngineOptions { MaxBatchSize = 1, MaxScheduledTokens = 32, Admission = AdmissionOrder.Arrival });
        var engine = model.Engine;
        engine.Submit(Greedy("a", Prompts[0], 4));
        var b = engine.Submit(Greedy("b", Prompts[1], 4));
        Assert.Empty(engine.Step());
        Assert.Equal(1, engine.NumWaiting);

        Assert.True(engine.Cancel(b));

        Assert.Equal(0, engine.NumWaiting);
        var cancelled = Assert.Single(engine.Step());
        Assert.Equal(("b", FinishReason.Cancelled, 0), (cancelled.Id, cancelled.FinishReason, cancelled.OutputIds.Count));
    }

    [Theory]
    [InlineData(32000)]
    [InlineData(-1)]
    public void Submit_tokenIdOutsideTheVocabulary_failsThatRequestOnly(int badId)
    {
        var results = Generate(new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 16 },
            Greedy("bad", [1, 5, badId, 7], 4), Greedy("good", Prompts[0], 4, ignoreEos: true));

        Assert.Equal(FinishReason.Error, results["bad"].FinishReason);
        Assert.Equal($"prompt token id {badId} is outside the vocabulary [0, 32000)", results["bad"].Error);
        Assert.Empty(results["bad"].OutputIds);
        Assert.Equal((FinishReason.Length, 4), (results["good"].FinishReason, results["good"].OutputIds.Count));
    }

    [Fact]
    public async Task GenerateAsync_tenConcurrentCallers_allGetTheSynchronousEnginesIds()
    {
        const int maxTokens = 12;
        var options = new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 16 };
        var prompts = Enumerable.Range(0, 10).Select(i => Prompts[i % Prompts.Length].Append(1000 + i).ToArray()).ToArray();
        var expected = EngineGoldenTests.Generate(models.TinyPackage, prompts, maxTokens, options);

        var model = LoadedModel.Open(models.TinyPackage, options);
        await using var host = new EngineHost(model.Engine); // disposes the engine
        var calls = prompts.Select((prompt, i) => Task.Run(() => host.GenerateAsync(new GenerationRequest($"p{i}", prompt, maxTokens)))).ToArray();
        var results = await Task.WhenAll(calls);

        for (var i = 0; i < prompts.Length; i++)
        {
            Assert.Equal($"p{i}", results[i].Id);
            Assert.Equal(expected[$"p{i}"].OutputIds, results[i].OutputIds);
            Assert.Equal(expected[$"p{i}"].FinishReason, results[i].FinishReason);
        }
        Assert.Equal(0, host.NumInFlight);
    }

    [Fact]
    public async Task GenerateAsync_alreadyCancelledToken_endsCancelled()
    {
        var model = LoadedModel.Open(models.TinyPackage, new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 16, MaxSequenceLength = 256 });
        await using var host = new EngineHost(model.Engine);

        var result = await host.GenerateAsync(Greedy("c", Prompts[0], 1000, ignoreEos: true), new CancellationToken(canceled: true));

        Assert.Equal("c", result.Id);
        Assert.Equal(FinishReason.Cancelled, result.FinishReason);
        Assert.Empty(result.OutputIds);
        Assert.Equal(0, host.NumInFlight);
    }

    [Fact]
    public async Task GenerateAsync_tokenCancelledMidGeneration_endsCancelledWhileOthersComplete()
    {
        var model = LoadedModel.Open(models.TinyPackage, new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 16, MaxSequenceLength = 512 });
        await using var host = new EngineHost(model.Engine);
        using var cancellation = new CancellationTokenSource();
        var steps = 0;
        host.StepCompleted += _ =>
        {
            if (++steps == 3)
            {
                cancellation.Cancel();
            }
        };

        var cancelled = host.GenerateAsync(Greedy("c", Prompts[0], 1000, ignoreEos: true), cancellation.Token);
        var other = host.GenerateAsync(Greedy("o", Prompts[2], 8, ignoreEos: true));
        var results = await Task.WhenAll(cancelled, other);

        Assert.Equal(("c", FinishReason.Cancelled), (results[0].Id, results[0].FinishReason));
        Assert.InRange(results[0].OutputIds.Count, 1, 100);
        Assert.Equal(("o", FinishReason.Length, 8), (results[1].Id, results[1].FinishReason, results[1].OutputIds.Count));
    }

    [Fact]
    public void Statistics_countEveryFedToken_promptsPlusOutputsMinusOneSampledUnfedTokenPerRequest()
    {
        using var model = LoadedModel.Open(models.TinyPackage, new EngineOptions { MaxBatchSize = 3, MaxScheduledTokens = 8 });
        var engine = model.Engine;
        var maxTokens = new[] { 1, 9, 4, 17, 2, 6 };
        for (var i = 0; i < Prompts.Length; i++)
        {
            engine.Submit(Greedy($"p{i}", Prompts[i], maxTokens[i], ignoreEos: true));
        }

        var results = RunToEnd(engine);

        var numPromptTokens = Prompts.Sum(p => p.Length);
        Assert.All(results.Values, r => Assert.Equal(FinishReason.Length, r.FinishReason));
        Assert.Equal(maxTokens.Sum(), results.Values.Sum(r => r.OutputIds.Count));
        // every prompt token is prefilled once; every output but the last is fed back by one decode
        Assert.Equal(numPromptTokens, engine.Statistics.NumPrefillTokens);
        Assert.Equal(maxTokens.Sum() - Prompts.Length, engine.Statistics.NumDecodeTokens);
        Assert.Equal(numPromptTokens + maxTokens.Sum() - Prompts.Length,
            engine.Statistics.NumPrefillTokens + engine.Statistics.NumDecodeTokens);
    }

    private static GenerationRequest Greedy(string id, int[] prompt, int maxTokens, bool ignoreEos = false) =>
        new(id, prompt, maxTokens, IgnoreEos: ignoreEos);

    private static GenerationRequest Sampled(string id, int[] prompt, int maxTokens, ulong seed) =>
        new(id, prompt, maxTokens, new SamplingParams(Temperature: 0.8f, TopP: 0.9f, Seed: seed), IgnoreEos: true);

    private Dictionary<string, GenerationResult> Generate(EngineOptions options, params GenerationRequest[] requests)
    {
        using var model = LoadedModel.Open(models.TinyPackage, options);
        foreach (var request in requests)
        {
            model.Engine.Submit(request);
        }
        return RunToEnd(model.Engine);
    }

    private static Dictionary<string, GenerationResult> RunToEnd(InferenceEngine engine)
    {
        var results = new Dictionary<string, GenerationResult>();
        for (var step = 0; engine.HasWork; step++)
        {
            foreach (var result in engine.Step())
            {
                results.Add(result.Id, result);
            }
            Assert.True(step < 10_000, "engine did not finish");
        }
        return results;
    }
}

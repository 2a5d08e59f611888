using VicunaBatch.Inference.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>The engine's greedy output against the independent numpy reference (model-export/reference.py).</summary>
[Collection("models")]
public sealed class EngineGoldenTests(ModelFixture models)
{
    private static readonly int[][] StoriesPrompts =
    [
        [1],
        [1, 403, 407, 261, 378],
        [1, 320, 285, 300, 261, 291, 274, 318, 424, 266, 302, 284, 400, 329, 280, 345, 374, 266, 291, 396, 307, 381],
        [1, 263, 431],
        [1, 500, 12, 48, 99, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321, 322, 323, 324, 325, 326, 327, 328, 329, 330, 331, 332, 333, 334, 335, 336],
    ];

    [Fact]
    public void Greedy_staggeredArrivalIntoOneEngine_matchesReferenceTokenForToken()
    {
        const int maxTokens = 40;
        var reference = models.Reference(models.StoriesSource, StoriesPrompts, maxTokens, logits: false);
        // small slots and budget: prompts queue for slots, long prompts are chunked, decodes share one Run
        using var model = LoadedModel.Open(models.StoriesPackage, new EngineOptions { MaxBatchSize = 3, MaxScheduledTokens = 8 });
        var engine = model.Engine;
        var results = new Dictionary<string, GenerationResult>();
        var next = 0;
        var step = 0;
        while (next < StoriesPrompts.Length || engine.HasWork)
        {
            // one new request every third step, while others are mid-prefill or decoding
            if (next < StoriesPrompts.Length && step % 3 == 0)
            {
                engine.Submit(new GenerationRequest($"p{next}", StoriesPrompts[next], maxTokens));
                next++;
            }
            foreach (var result in engine.Step())
            {
                results.Add(result.Id, result);
            }
            step++;
            Assert.True(step < 10_000, "engine did not finish");
        }

        for (var i = 0; i < StoriesPrompts.Length; i++)
        {
            AssertMatchesReference(reference[i], results[$"p{i}"]);
        }
        Assert.True(engine.Statistics.MeanBatchOccupancy > 0.5, $"occupancy {engine.Statistics.MeanBatchOccupancy}");
    }

    [Fact]
    public void Greedy_eachPromptAlone_equalsSameIdsAsInBatch()
    {
        const int maxTokens = 30;
        var batched = Generate(models.TinyPackage, StoriesPrompts, maxTokens, new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 16 });
        for (var i = 0; i < StoriesPrompts.Length; i++)
        {
            var alone = Generate(models.TinyPackage, [StoriesPrompts[i]], maxTokens, new EngineOptions { MaxBatchSize = 1, MaxScheduledTokens = 64 });
            Assert.Equal(alone["p0"].OutputIds, batched[$"p{i}"].OutputIds);
        }
    }

    [Fact]
    public void Greedy_tinyRandomModel_matchesReference()
    {
        const int maxTokens = 24;
        var reference = models.Reference(models.TinySource, StoriesPrompts, maxTokens, logits: false);
        var results = Generate(models.TinyPackage, StoriesPrompts, maxTokens, new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 5 });
        for (var i = 0; i < StoriesPrompts.Length; i++)
        {
            AssertMatchesReference(reference[i], results[$"p{i}"]);
        }
    }

    internal static Dictionary<string, GenerationResult> Generate(
        string package, IReadOnlyList<int[]> prompts, int maxTokens, EngineOptions options, Func<int, SamplingParams>? sampling = null)
    {
        using var model = LoadedModel.Open(package, options);
        return EngineRuns.RunTogether(model.Engine,
            prompts.Select((prompt, i) => new GenerationRequest($"p{i}", prompt, maxTokens, sampling?.Invoke(i))));
    }

    private static void AssertMatchesReference(ReferenceResult expected, GenerationResult actual)
    {
        // reference.py includes EOS in its ids; the engine stops on it and leaves it out
        var ids = expected.Ids.ToList();
        var endedOnEos = ids.Count > 0 && ids[^1] == 2;
        if (endedOnEos)
        {
            ids.RemoveAt(ids.Count - 1);
        }
        Assert.Null(actual.Error);
        Assert.Equal(ids, actual.OutputIds);
        Assert.Equal(endedOnEos ? FinishReason.Stop : FinishReason.Length, actual.FinishReason);
    }
}

using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Tests.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.GenAi.Tests;

/// <summary>
/// ONNX Runtime GenAI 0.20.0 loads every package model-export writes, unmodified, and its greedy ids equal the engine's
/// token for token: the shipped tiny package, stories260K through each import path, an int4 export, and prompts of
/// different lengths that the engine runs together (chunked prefills beside decodes) while GenAI runs each alone.
/// </summary>
[Collection("models")]
public sealed class GreedyAgreementTests(ModelFixture models)
{
    private const int MaxTokens = 40;

    private static readonly int[][] Prompts =
    [
        [1],
        [1, 403, 407, 261, 378],
        [1, 320, 285, 300, 261, 291, 274, 318, 424, 266, 302, 284, 400, 329, 280, 345, 374, 266, 291, 396, 307, 381],
        [1, 263, 431],
    ];

    /// <summary>Every request of a step alone: no batching to hide behind.</summary>
    private static readonly EngineOptions OneAtATime = new() { MaxBatchSize = 1, MaxScheduledTokens = 64 };

    [Fact]
    public void ShippedTinyPackage_genAiLoadsItUnmodified_sameGreedyIds()
    {
        AssertAgree(Path.Combine(Checkout.Root, "models", "tiny"), Prompts, OneAtATime);
    }

    [Fact]
    public void StoriesFromLlama2c_sameGreedyIds()
    {
        AssertAgree(models.StoriesPackage, Prompts, OneAtATime);
    }

    [Fact]
    public void StoriesThroughHuggingFaceLayout_sameGreedyIds()
    {
        var hf = models.StoriesAsHf("--dtype", "F32", "--shards", "2");
        AssertAgree(models.Export($"--from-hf {hf}"), Prompts, OneAtATime);
    }

    [Fact]
    public void StoriesFromBasePlusDelta_sameGreedyIds()
    {
        var target = models.StoriesAsHf("--dtype", "F32");
        var baseDir = models.NewDirectory("hf-base");
        var delta = models.NewDirectory("hf-delta");
        models.RunScript("tools/make_delta.py", "--target", target, "--make-base", baseDir, "--seed", "7", "--base-vocab", "500", "--out", delta);
        AssertAgree(models.Export($"--base {baseDir} --delta {delta}"), Prompts, OneAtATime);
    }

    [Fact]
    public void StoriesInt4Export_sameGreedyIds()
    {
        AssertAgree(models.Export($"{models.StoriesSource} --dtype int4"), Prompts, OneAtATime);
    }

    [Fact]
    public void PromptsOfDifferentLengthsRunTogetherInTheEngine_eachEqualsGenAiRunningItAlone()
    {
        AssertAgree(models.StoriesPackage, PromptsOfDifferentLengths, Together);
    }

    /// <summary>1 to 61 tokens: with <see cref="Together"/>, long prompts are chunked while short ones already decode beside them.</summary>
    internal static readonly int[][] PromptsOfDifferentLengths =
        [.. Enumerable.Range(0, 6).Select(i => new[] { 1 }.Concat(Enumerable.Range(0, i * 12).Select(j => 3 + (j * 37 + i * 101) % 500)).ToArray())];

    /// <summary>4 requests at once, 8 tokens a step.</summary>
    internal static readonly EngineOptions Together = new() { MaxBatchSize = 4, MaxScheduledTokens = 8 };

    /// <summary>GenAI's greedy ids for <paramref name="prompts"/> equal the engine's run with <paramref name="options"/>; the ids.</summary>
    internal static IReadOnlyList<GenAiContinuation> AssertAgree(string package, IReadOnlyList<int[]> prompts, EngineOptions options)
    {
        var expected = GenAiGreedy.Generate(package, prompts, MaxTokens);
        Dictionary<string, GenerationResult> actual;
        using (var model = LoadedModel.Open(package, options))
        {
            actual = EngineRuns.RunTogether(model.Engine, prompts.Select((p, i) => new GenerationRequest($"p{i}", p, MaxTokens)));
        }

        for (var i = 0; i < prompts.Count; i++)
        {
            var ours = actual[$"p{i}"];
            Assert.Null(ours.Error);
            Assert.Equal(expected[i].Ids, ours.OutputIds);
            Assert.Equal(expected[i].EndedOnEos ? FinishReason.Stop : FinishReason.Length, ours.FinishReason);
        }
        // a comparison of empty or constant outputs would prove nothing
        Assert.True(expected.Sum(c => c.Ids.Count) >= prompts.Count * 5, $"GenAI wrote only {expected.Sum(c => c.Ids.Count)} ids");
        Assert.True(expected.SelectMany(c => c.Ids).Distinct().Count() > 5, "degenerate greedy output");
        return expected;
    }
}

using System.Numerics.Tensors;
using System.Text.Json.Nodes;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// <see cref="GenerationRequest.ReturnLogits"/>: the logits each token was sampled from, against the independent
/// numpy reference (model-export/reference.py --logits), which is what export.py --verify compares.
/// </summary>
[Collection("models")]
public sealed class EngineLogitsTests(ModelFixture models)
{
    private const double Float32Tolerance = 1e-4;
    private const int MaxTokens = 12;

    internal static readonly int[][] Prompts =
    [
        [1],
        [1, 403, 407, 261, 378],
        [1, 320, 285, 300, 261, 291, 274, 318, 424, 266, 302],
    ];

    // small slots and budget: the long prompt is chunked, decodes share one Run
    internal static readonly EngineOptions Options = new() { MaxBatchSize = 2, MaxScheduledTokens = 5 };

    public static TheoryData<string> Models => ["stories", "tiny"];

    [Theory]
    [MemberData(nameof(Models))]
    public void ReturnLogits_greedy_oneRowPerIdThatChoosesItAndEqualsTheReference(string model)
    {
        var (package, source) = model == "stories" ? (models.StoriesPackage, models.StoriesSource) : (models.TinyPackage, models.TinySource);
        var reference = models.Reference(source, Prompts, MaxTokens, logits: true);

        var results = Generate(package, Prompts.Select(p => Request(p, returnLogits: true)));

        for (var i = 0; i < Prompts.Length; i++)
        {
            var result = results[$"p{i}"];
            Assert.Equal(reference[i].Ids, result.OutputIds);   // neither reaches eos in 12 tokens
            Assert.NotNull(result.Logits);
            Assert.Equal(MaxTokens, result.Logits.Count);
            for (var step = 0; step < MaxTokens; step++)
            {
                Assert.Equal(reference[i].Logits![step].Length, result.Logits[step].Length);
                Assert.Equal(result.OutputIds[step], TensorPrimitives.IndexOfMax(result.Logits[step]));
                AssertClose(reference[i].Logits![step], result.Logits[step], $"{model} p{i} step {step}");
            }
        }
    }

    [Fact]
    public void ReturnLogits_off_resultHasNoLogits()
    {
        var results = Generate(models.TinyPackage, [Request(Prompts[1], returnLogits: false)]);

        Assert.Null(results["p0"].Logits);
        Assert.Equal(MaxTokens, results["p0"].OutputIds.Count);
    }

    [Fact]
    public void ReturnLogits_sampled_rowsAreTheRawLogitsBeforeTemperature()
    {
        var sampled = new GenerationRequest(string.Empty, Prompts[1], MaxTokens, new SamplingParams(Temperature: 5f, Seed: 3), ReturnLogits: true);
        var reference = models.Reference(models.StoriesSource, [Prompts[1]], 1, logits: true);

        var result = Generate(models.StoriesPackage, [sampled])["p0"];

        Assert.Equal(MaxTokens, result.Logits!.Count);
        // the first row comes from the prompt alone, whatever was sampled: the reference's unscaled first logits
        AssertClose(reference[0].Logits![0], result.Logits[0], "sampled step 0");
    }

    [Fact]
    public void ReturnLogits_stopsOnEos_keepsTheRowThatChoseEos()
    {
        var reference = models.Reference(models.StoriesSource, [Prompts[1]], MaxTokens, logits: true)[0];
        // make the id the model picks at step k (not picked before it) the package's eos
        var k = Enumerable.Range(3, MaxTokens - 3).First(j => !reference.Ids.Take(j).Contains(reference.Ids[j]));
        var package = WithEos(models.StoriesPackage, reference.Ids[k]);

        var result = Generate(package, [Request(Prompts[1], returnLogits: true)])["p0"];

        Assert.Equal(FinishReason.Stop, result.FinishReason);
        Assert.Equal(reference.Ids.Take(k), result.OutputIds);
        Assert.Equal(k + 1, result.Logits!.Count);
        Assert.Equal(reference.Ids[k], TensorPrimitives.IndexOfMax(result.Logits[k]));
        for (var step = 0; step <= k; step++)
        {
            AssertClose(reference.Logits![step], result.Logits[step], $"step {step}");
        }
    }

    private static GenerationRequest Request(int[] prompt, bool returnLogits) =>
        new(string.Empty, prompt, MaxTokens, ReturnLogits: returnLogits);

    /// <summary>Runs the requests together in one engine; results by "p{index}".</summary>
    private static Dictionary<string, GenerationResult> Generate(string package, IEnumerable<GenerationRequest> requests)
    {
        using var model = LoadedModel.Open(package, Options);
        return EngineRuns.RunTogether(model.Engine, requests.Select((r, i) => r with { Id = $"p{i}" }));
    }

    private string WithEos(string package, int eos)
    {
        var copy = models.NewDirectory("eos");
        foreach (var file in Directory.GetFiles(package))
        {
            File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        }
        var configPath = Path.Combine(copy, "genai_config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!;
        config["model"]!["eos_token_id"] = eos;
        File.WriteAllText(configPath, config.ToJsonString());
        return copy;
    }

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        var error = 0.0;
        for (var i = 0; i < expected.Length; i++)
        {
            error = Math.Max(error, Math.Abs(expected[i] - actual[i]));
        }
        Assert.True(error <= Float32Tolerance, $"{what}: max |Δlogit| {error:G3} > {Float32Tolerance}");
    }
}

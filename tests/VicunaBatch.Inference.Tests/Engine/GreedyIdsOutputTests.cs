using System.Numerics.Tensors;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// The graph's <c>greedy_ids</c> output (variant A, on the CPU here; the CUDA runner keeps the logits on the device and reads
/// the same ids): greedy requests take the graph's argmax, requests that sample or return logits still get their rows, and
/// a package without the output (an older export) generates the same tokens through the host argmax.
/// </summary>
[Collection("models")]
public sealed class GreedyIdsOutputTests(ModelFixture models)
{
    private const int MaxTokens = 16;

    // EngineLogitsTests' prompts and options: two slots, a 5-token budget; decodes share a call, the long prompt is chunked
    private static readonly int[][] Prompts = EngineLogitsTests.Prompts;
    private static readonly EngineOptions Options = EngineLogitsTests.Options;

    [Fact]
    public void GraphArgmax_greedyRequestsGetTheArgmaxOfTheLogitsTheyWouldHaveBeenGiven()
    {
        // each prompt twice in one engine: once taking the graph's id, once with its logits rows (host argmax)
        var requests = Prompts.SelectMany((p, i) => new[]
        {
            new GenerationRequest($"graph{i}", p, MaxTokens, IgnoreEos: true),
            new GenerationRequest($"host{i}", p, MaxTokens, IgnoreEos: true, ReturnLogits: true),
        });

        var (selects, results) = Generate(models.TinyPackage, requests);

        Assert.True(selects, "an export with greedy_ids: the runner takes greedy tokens from the graph");
        for (var i = 0; i < Prompts.Length; i++)
        {
            var host = results[$"host{i}"];
            Assert.Equal(MaxTokens, host.OutputIds.Count);
            Assert.Equal(host.OutputIds, host.Logits!.Select(row => TensorPrimitives.IndexOfMax(row)));
            Assert.Equal(host.OutputIds, results[$"graph{i}"].OutputIds);
            Assert.Null(results[$"graph{i}"].Logits);
        }
    }

    [Fact]
    public void PackageWithoutGreedyIds_generatesTheSameTokens_greedyAndSampled()
    {
        var withOutput = models.TinyPackage;
        var without = models.WithoutOutput(withOutput, "greedy_ids");
        var requests = Prompts.SelectMany((p, i) => new[]
        {
            new GenerationRequest($"greedy{i}", p, MaxTokens, IgnoreEos: true),
            new GenerationRequest($"sampled{i}", p, MaxTokens, new SamplingParams(Temperature: 1.5f, TopP: 0.9f, Seed: (ulong)(7 + i)), IgnoreEos: true),
        }).ToList();

        var (selectsWith, a) = Generate(withOutput, requests);
        var (selectsWithout, b) = Generate(without, requests);

        Assert.True(selectsWith);
        Assert.False(selectsWithout, "no greedy_ids output: every row is read on the host");
        foreach (var request in requests)
        {
            Assert.Equal(MaxTokens, a[request.Id].OutputIds.Count);
            Assert.Equal(b[request.Id].OutputIds, a[request.Id].OutputIds);
        }
        // the sampled requests really sampled (not the greedy path): at temperature 1.5 they leave the greedy tokens
        Assert.Contains(Enumerable.Range(0, Prompts.Length), i => !a[$"sampled{i}"].OutputIds.SequenceEqual(a[$"greedy{i}"].OutputIds));
    }

    /// <summary>Runs the requests together in one engine; whether it took greedy ids from the graph, and results by id.</summary>
    private static (bool SelectsGreedyInGraph, Dictionary<string, GenerationResult> Results) Generate(string package, IEnumerable<GenerationRequest> requests)
    {
        using var model = LoadedModel.Open(package, Options);
        return (model.Engine.SelectsGreedyInGraph, EngineRuns.RunTogether(model.Engine, requests));
    }
}

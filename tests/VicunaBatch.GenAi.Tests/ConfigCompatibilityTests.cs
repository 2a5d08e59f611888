using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntimeGenAI;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Tests.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.GenAi.Tests;

/// <summary>Packages written before model-export kept to GenAI's schema carry the graph's rms_norm_eps and rope_theta in their config.</summary>
[Collection("models")]
public sealed class ConfigCompatibilityTests(ModelFixture models)
{
    [Fact]
    public void OlderConfigWithGraphValues_theEngineStillRunsIt_genAiRefusesItByName()
    {
        var older = models.NewDirectory("older-config");
        foreach (var file in Directory.GetFiles(models.StoriesPackage))
        {
            File.Copy(file, Path.Combine(older, Path.GetFileName(file)));
        }
        var configPath = Path.Combine(older, "genai_config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        var decoder = config["model"]!["decoder"]!.AsObject();
        Assert.Null(decoder["rms_norm_eps"]);
        decoder["rms_norm_eps"] = 1e-5;
        decoder["rope_theta"] = 10000.0;
        File.WriteAllText(configPath, config.ToJsonString());

        var refused = Assert.Throws<OnnxRuntimeGenAIException>(() => new Model(older).Dispose());
        Assert.Contains("rms_norm_eps", refused.Message);

        int[] prompt = [1, 403, 407, 261, 378];
        var fromOlder = Run(older, prompt);
        var fromCurrent = Run(models.StoriesPackage, prompt);
        Assert.Equal(fromCurrent, fromOlder);
        Assert.True(fromOlder.Count == 20, $"the older package generated {fromOlder.Count} of 20 ids");
    }

    private static IReadOnlyList<int> Run(string package, int[] prompt)
    {
        using var model = LoadedModel.Open(package, new EngineOptions { MaxBatchSize = 1, MaxScheduledTokens = 64 });
        var request = new GenerationRequest("p", prompt, 20, IgnoreEos: true);
        return EngineRuns.RunTogether(model.Engine, [request])["p"].OutputIds;
    }
}

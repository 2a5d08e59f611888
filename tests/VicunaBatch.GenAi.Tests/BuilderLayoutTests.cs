using System.Text.Json.Nodes;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;
using VicunaBatch.Inference.Tests.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.GenAi.Tests;

/// <summary>
/// The other direction: a package as ONNX Runtime GenAI's model builder writes it for LLaMA (export.py --layout
/// genai-builder: position_ids when rotary runs outside GroupQueryAttention, the KV's head dimension symbolic, no
/// greedy_ids, the builder's genai_config.json) runs in the engine, and what the engine does not support is refused by name.
/// </summary>
[Collection("models")]
public sealed class BuilderLayoutTests(ModelFixture models)
{
    [Fact]
    public void WithPositionIds_engineBatchingItAndGenAi_sameGreedyIdsAsOurLayout()
    {
        // stories260K: head 8, so rotary runs outside GQA and the builder's graph reads position_ids
        var builder = models.Export($"{models.StoriesSource} --layout genai-builder");
        Assert.Equal("position_ids", ModelPackage.Load(builder).Config.Model.Decoder.Inputs!.PositionIds);

        var fromGenAi = GreedyAgreementTests.AssertAgree(builder, GreedyAgreementTests.PromptsOfDifferentLengths, GreedyAgreementTests.Together);
        var ours = GenAiGreedy.Generate(models.StoriesPackage, GreedyAgreementTests.PromptsOfDifferentLengths, 40);
        Assert.Equal(ours.Select(c => c.Ids), fromGenAi.Select(c => c.Ids));
    }

    [Fact]
    public void RotaryInsideGqa_noPositionIdsNorGreedyIds_sameGreedyIds()
    {
        var builder = models.Export($"{models.TinySource} --layout genai-builder");
        Assert.Null(ModelPackage.Load(builder).Config.Model.Decoder.Inputs!.PositionIds);
        GreedyAgreementTests.AssertAgree(builder, GreedyAgreementTests.PromptsOfDifferentLengths, GreedyAgreementTests.Together);
    }

    [Fact]
    public void GraphTakesPositionIdsTheConfigDoesNotName_isRefusedNamingIt()
    {
        var package = CopyWithConfig(models.Export($"{models.StoriesSource} --layout genai-builder"),
            config => config["model"]!["decoder"]!["inputs"]!.AsObject().Remove("position_ids"));

        var refused = Assert.Throws<ModelPackageException>(() => LoadedModel.Open(package, new EngineOptions { MaxBatchSize = 1 }).Dispose());

        Assert.Contains("the graph needs inputs the engine does not feed: position_ids (rotary outside the attention node: name it in model.decoder.inputs.position_ids)", refused.Message);
    }

    [Theory]
    [InlineData("sliding_window", "model.decoder.sliding_window (sliding-window attention")]
    [InlineData("past_present_share_buffer", "search.past_present_share_buffer is false")]
    public void BuilderFeatureTheEngineLacks_isRefusedByName(string feature, string expected)
    {
        var package = CopyWithConfig(models.Export($"{models.TinySource} --layout genai-builder"), config =>
        {
            if (feature == "sliding_window") config["model"]!["decoder"]!["sliding_window"] = new JsonObject { ["window_size"] = 16, ["layers"] = new JsonArray(0) };
            else config["search"]!["past_present_share_buffer"] = false;
        });

        var refused = Assert.Throws<ModelPackageException>(() => ModelPackage.Load(package));

        Assert.Contains(expected, refused.Message);
    }

    [Fact]
    public void TokenizerJsonWithoutTokenizerModel_runsOnIds_andTextCommandsSayWhyNot()
    {
        var package = CopyWithConfig(models.Export($"{models.TinySource} --layout genai-builder"), _ => { });
        File.WriteAllText(Path.Combine(package, "tokenizer.json"), """{"version": "1.0", "model": {"type": "BPE"}}""");
        File.WriteAllText(Path.Combine(package, "tokenizer_config.json"), """{"tokenizer_class": "LlamaTokenizer"}""");

        using var model = LoadedModel.Open(package, new EngineOptions { MaxBatchSize = 1 });

        Assert.Null(model.Tokenizer);
        Assert.Equal(5, EngineRuns.RunTogether(model.Engine, [new GenerationRequest("p", [1, 2, 3], 5, IgnoreEos: true)])["p"].OutputIds.Count);
        Assert.Equal("has no tokenizer.model (its tokenizer.json, a Hugging Face tokenizer, is not read: put the model's SentencePiece tokenizer.model beside it)",
            model.Package.NoTokenizer);
    }

    private string CopyWithConfig(string package, Action<JsonNode> edit)
    {
        var copy = models.NewDirectory("builder-package");
        foreach (var file in Directory.GetFiles(package))
        {
            File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        }
        var path = Path.Combine(copy, ModelPackage.ConfigFileName);
        var config = JsonNode.Parse(File.ReadAllText(path))!;
        edit(config);
        File.WriteAllText(path, config.ToJsonString());
        return copy;
    }
}

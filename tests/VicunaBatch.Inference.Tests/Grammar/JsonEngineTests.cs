using System.Text;
using System.Text.Json;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Grammar;
using VicunaBatch.Inference.Tests.Engine;
using VicunaBatch.Inference.Tests.Text;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Grammar;

/// <summary>
/// Constrained requests on real models: the committed tiny model (its 1,024-piece tokenizer) and a tiny random model
/// exported with the LLaMA tokenizer (32,000 pieces). Whatever the random weights prefer, every output that ends
/// parses, and one cut by max_tokens is a prefix the grammar reads, with finish reason length.
/// </summary>
[Collection("models")]
public sealed class JsonEngineTests(ModelFixture models)
{
    private static string TinyModel => Path.Combine(Checkout.Root, "models", "tiny");

    private string LlamaVocabularyModel => models.Export($"--config tiny --seed 1 --tokenizer {SentencePieceOracle.LlamaTokenizerPath}");

    /// <summary>Every key required, none other allowed, no strings: the text is bounded, so every request ends.</summary>
    private static readonly JsonSchemaNode Reading = new ObjectSchema(
        [new("x", new NumberSchema(true)), new("ok", new BooleanSchema()), new("kind", new LiteralSchema(["\"a\"", "\"b\""])), new("n", new NullSchema())],
        ["x", "ok", "kind", "n"], null);

    [Fact]
    public void JsonObject_onTheTinyModel_everyEndedOutputParsesAsAnObjectAndEveryCutOneIsAPrefix()
    {
        var results = Run(TinyModel, JsonGrammar.AnyObject, numRequests: 16, maxTokens: 400);
        var numEnded = AssertParsesOrIsCut(results, JsonGrammar.AnyObject, JsonSchemaNode.AnyObject);
        Assert.True(numEnded >= 12, $"{numEnded} of 16 ended");
    }

    [Fact]
    public void JsonObject_onTheLlamaVocabulary_everyEndedOutputParsesAndEveryCutOneIsAPrefix()
    {
        var results = Run(LlamaVocabularyModel, JsonGrammar.AnyObject, numRequests: 8, maxTokens: 200);
        AssertParsesOrIsCut(results, JsonGrammar.AnyObject, JsonSchemaNode.AnyObject);
    }

    [Theory]
    [InlineData("tiny")]
    [InlineData("llama")]
    public void JsonSchema_withABoundedSchema_everyOutputEndsParsesAndFitsIt(string vocabulary)
    {
        var grammar = JsonGrammar.ForSchema(Reading);
        var results = Run(vocabulary == "tiny" ? TinyModel : LlamaVocabularyModel, grammar, numRequests: 8, maxTokens: 400);
        Assert.Equal(8, AssertParsesOrIsCut(results, grammar, Reading));
    }

    [Fact]
    public void MaxTokens_cutsTheJson_withFinishReasonLengthAndAPrefixTheGrammarReads()
    {
        var results = Run(TinyModel, JsonGrammar.ForSchema(TokenMaskTests.Person), numRequests: 4, maxTokens: 3);
        foreach (var result in results)
        {
            Assert.Equal(FinishReason.Length, result.FinishReason);
            Assert.Equal(3, result.CompletionTokens);
            var matcher = JsonGrammar.ForSchema(TokenMaskTests.Person).Start();
            Assert.True(matcher.TryAdvance(Encoding.UTF8.GetBytes(result.Text!)), result.Text);
            Assert.False(matcher.CanEnd, result.Text);
        }
    }

    [Fact]
    public void Grammar_withoutATokenizer_failsTheRequestAlone()
    {
        using var model = LoadedModel.Open(models.StoriesPackage, new EngineOptions { MaxBatchSize = 2 });
        var results = EngineRuns.RunTogether(model.Engine,
            [new GenerationRequest("json", [1, 5, 6], 8, Grammar: JsonGrammar.AnyObject), new GenerationRequest("free", [1, 5, 6], 8)]);
        Assert.Equal(GenerationErrorKind.InvalidRequest, results["json"].ErrorKind);
        Assert.Contains("needs a tokenizer", results["json"].Error);
        Assert.Equal(FinishReason.Length, results["free"].FinishReason);
    }

    /// <summary>Each output ended on EOS parses and fits <paramref name="schema"/>; each cut by max_tokens is a prefix <paramref name="grammar"/> reads. Returns the number that ended.</summary>
    private static int AssertParsesOrIsCut(List<GenerationResult> results, JsonGrammar grammar, JsonSchemaNode schema)
    {
        foreach (var result in results)
        {
            if (result.FinishReason == FinishReason.Stop)
            {
                using var document = JsonDocument.Parse(result.Text!);
                Assert.True(SchemaCheck.Satisfies(document.RootElement, schema), $"{result.Id}: {result.Text}");
                continue;
            }
            Assert.Equal(FinishReason.Length, result.FinishReason);
            Assert.True(grammar.Start().TryAdvance(Encoding.UTF8.GetBytes(result.Text!)), $"{result.Id}: {result.Text}");
        }
        return results.Count(r => r.FinishReason == FinishReason.Stop);
    }

    /// <summary>Half greedy, half sampled at temperature 1 with their own seeds, all in one batch.</summary>
    private static List<GenerationResult> Run(string package, JsonGrammar grammar, int numRequests, int maxTokens)
    {
        using var model = LoadedModel.Open(package, new EngineOptions { MaxBatchSize = 8, NumThreads = 1 });
        var tokenizer = model.Tokenizer!;
        var requests = Enumerable.Range(0, numRequests).Select(i => new GenerationRequest(
            $"r{i}", [tokenizer.BosId, .. tokenizer.Encode($"Answer in JSON, request {i}:")], maxTokens,
            i % 2 == 0 ? new SamplingParams(1f, Seed: (ulong)i) : SamplingParams.Greedy, Grammar: grammar));
        var results = EngineRuns.RunTogether(model.Engine, requests).Values.OrderBy(r => r.Id).ToList();
        Assert.Equal(numRequests, results.Count);
        return results;
    }
}

using VicunaBatch.Inference.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// <see cref="GenerationRequest.TopLogprobs"/>: each token's log probability and the most likely tokens at its step,
/// against a log-softmax computed here in double precision from the independent numpy reference's logits
/// (model-export/reference.py --logits).
/// </summary>
[Collection("models")]
public sealed class EngineLogprobsTests(ModelFixture models)
{
    private const double Tolerance = 1e-4;
    private const int MaxTokens = 8;
    private static readonly int[] Prompt = [1, 403, 407, 261, 378];

    [Fact]
    public void TopLogprobs_greedy_equalTheReferenceLogSoftmaxAndItsTopTokens()
    {
        var reference = models.Reference(models.StoriesSource, [Prompt], MaxTokens, logits: true)[0];

        var result = Generate(new GenerationRequest("p", Prompt, MaxTokens, TopLogprobs: 5));

        Assert.Equal(reference.Ids, result.OutputIds);
        Assert.Equal(MaxTokens, result.Logprobs!.Count);
        for (var step = 0; step < MaxTokens; step++)
        {
            var expected = LogSoftmax(reference.Logits![step]);
            var got = result.Logprobs[step];
            Assert.Equal(result.OutputIds[step], got.Chosen.TokenId);
            Assert.Equal(expected[got.Chosen.TokenId], got.Chosen.Logprob, Tolerance);
            var expectedTop = expected.Select((logprob, id) => (id, logprob)).OrderByDescending(t => t.logprob).Take(5).ToList();
            Assert.Equal(expectedTop.Select(t => t.id), got.Top.Select(t => t.TokenId));
            for (var k = 0; k < 5; k++) Assert.Equal(expectedTop[k].logprob, got.Top[k].Logprob, Tolerance);
        }
    }

    [Fact]
    public void TopLogprobs_sampledAtTemperature_areTheModelsBeforeTemperature()
    {
        var reference = models.Reference(models.StoriesSource, [Prompt], 1, logits: true)[0];
        var sampled = new GenerationRequest("p", Prompt, MaxTokens, new SamplingParams(Temperature: 1.7f, TopP: 0.9f, Seed: 11), TopLogprobs: 3);

        var result = Generate(sampled);

        // step 0's distribution comes from the prompt alone, whatever is sampled after it
        var expected = LogSoftmax(reference.Logits![0]);
        Assert.Equal(expected[result.OutputIds[0]], result.Logprobs![0].Chosen.Logprob, Tolerance);
        Assert.Equal(expected.Max(), result.Logprobs[0].Top[0].Logprob, Tolerance);
        Assert.Equal(result.OutputIds, result.Logprobs.Select(l => l.Chosen.TokenId));
    }

    [Fact]
    public void TopLogprobs_zero_givesTheChosenTokenAndNoAlternatives()
    {
        var result = Generate(new GenerationRequest("p", Prompt, MaxTokens, TopLogprobs: 0));

        Assert.All(result.Logprobs!, step => Assert.Empty(step.Top));
        Assert.All(result.Logprobs!, step => Assert.True(step.Chosen.Logprob <= 0));
    }

    [Fact]
    public void TopLogprobs_unset_resultHasNone()
    {
        Assert.Null(Generate(new GenerationRequest("p", Prompt, MaxTokens)).Logprobs);
    }

    [Fact]
    public void TopLogprobs_outOfRange_failsTheRequestAlone()
    {
        var result = Generate(new GenerationRequest("p", Prompt, MaxTokens, TopLogprobs: 21));

        Assert.Equal(FinishReason.Error, result.FinishReason);
        Assert.Equal(GenerationErrorKind.InvalidRequest, result.ErrorKind);
    }

    /// <summary>log softmax in double: l_i − max − log Σ exp(l_j − max).</summary>
    private static double[] LogSoftmax(float[] logits)
    {
        double max = logits.Max();
        var logSum = Math.Log(logits.Sum(l => Math.Exp(l - max)));
        return logits.Select(l => l - max - logSum).ToArray();
    }

    private GenerationResult Generate(GenerationRequest request)
    {
        using var model = LoadedModel.Open(models.StoriesPackage, EngineLogitsTests.Options);
        return EngineRuns.RunTogether(model.Engine, [request])[request.Id];
    }
}

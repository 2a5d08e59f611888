using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Onnx;
using VicunaBatch.Inference.Package;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// The decode shapes CUDA graphs replay (<see cref="FixedDecodeShapes"/>): rows padded to a power of two, the
/// attention mask as wide as a slot. On the CPU, without capture, they must change nothing: the same tokens and the
/// same logits as calls of each step's own shape, while slots fill, empty and take new requests.
/// </summary>
[Collection("models")]
public sealed class FixedDecodeShapesTests(ModelFixture models)
{
    private const int NumSlots = 5;
    private const int MaxLength = 64;

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(2, 5, 2)]
    [InlineData(3, 5, 4)]
    [InlineData(4, 5, 4)]
    [InlineData(5, 5, 5)]
    [InlineData(9, 126, 16)]
    [InlineData(126, 126, 126)]
    public void Bucket_isTheNextPowerOfTwo_atMostTheSlots(int rows, int numSlots, int bucket) =>
        Assert.Equal(bucket, FixedDecodeShapes.Bucket(rows, numSlots));

    [Theory]
    [InlineData(0)]
    [InlineData(6)]
    public void Bucket_ofNoRowsOrMoreThanTheSlots_throws(int rows) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => FixedDecodeShapes.Bucket(rows, NumSlots));

    [Fact]
    public void PaddedDecodes_giveTheTokensAndLogitsOfUnpaddedOnes()
    {
        // 9 requests on 5 slots, lengths that differ: decode calls of 1 to 5 rows, slots reused by shorter requests
        // (a row's mask must shrink), prompts chunked by the 7-token budget
        var requests = Enumerable.Range(0, 9).Select(i => new GenerationRequest(
            $"r{i}", [1, .. Enumerable.Range(0, 1 + (i * 5) % 11).Select(t => 300 + 17 * i + t)], 3 + (i * 7) % 13,
            IgnoreEos: true, ReturnLogits: true)).ToList();
        var options = new EngineOptions { MaxBatchSize = NumSlots, MaxScheduledTokens = 7, Admission = AdmissionOrder.Arrival };

        var (paddedRunner, padded) = Generate(options, requests, padDecodes: true);
        var (plainRunner, plain) = Generate(options, requests, padDecodes: false);

        Assert.True(paddedRunner);
        Assert.False(plainRunner);
        foreach (var request in requests)
        {
            var a = padded[request.Id];
            var b = plain[request.Id];
            Assert.Equal(request.MaxTokens, a.OutputIds.Count);
            Assert.Equal(b.OutputIds, a.OutputIds);
            for (var step = 0; step < a.Logits!.Count; step++)
            {
                var worst = a.Logits[step].Zip(b.Logits![step], (x, y) => Math.Abs(x - y)).Max();
                Assert.True(worst < 1e-4, $"{request.Id} step {step}: max |delta logit| {worst}");
            }
        }
    }

    private (bool FixedDecodes, Dictionary<string, GenerationResult> Results) Generate(EngineOptions options, List<GenerationRequest> requests, bool padDecodes)
    {
        var package = ModelPackage.Load(models.TinyPackage);
        var runner = new GqaRunner(package, options.MaxBatchSize, MaxLength, options.MaxScheduledTokens, numThreads: 1, padDecodes: padDecodes);
        using var engine = new InferenceEngine(runner, new SlotTable(runner.NumSlots, MaxLength), options, new ModelVocabulary(package.Config.Model.EosTokenIds, null));
        return (runner.FixedDecodes, EngineRuns.RunTogether(engine, requests));
    }
}

using System.Collections.Immutable;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// The byte and FLOP model of an engine step (<see cref="StepCost"/>): from a package's files and shapes, per plan, and
/// as the engine sums it over a run.
/// </summary>
[Collection("models")]
public sealed class StepCostTests(ModelFixture models)
{
    [Fact]
    public void Of_vicuna13bShapes_weightsLessEmbedding_andKvOfATokenAsTheIssueEstimates()
    {
        // the Vicuna-13B float16 package's shapes; its weights file sparse, at the size export.py writes (13,015,864,320 × 2 bytes)
        var folder = Directory.CreateTempSubdirectory("vb-stepcost-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "genai_config.json"), """
                {"model": {"type": "llama", "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "context_length": 2048, "vocab_size": 32000,
                  "decoder": {"filename": "model.onnx", "head_size": 128, "hidden_size": 5120, "num_attention_heads": 40,
                    "num_hidden_layers": 40, "num_key_value_heads": 40}},
                 "search": {"max_length": 2048}}
                """);
            File.WriteAllBytes(Path.Combine(folder, "model.onnx"), new byte[1000]);
            using (var data = File.Create(Path.Combine(folder, "model.onnx.data")))
            {
                data.SetLength(26_031_728_640 - 1000);
            }
            File.WriteAllBytes(Path.Combine(folder, "tokenizer.model"), new byte[500_000]);

            var cost = StepCost.Of(ModelPackage.Load(folder), kvElementBytes: 2, activationElementBytes: 2);

            Assert.Equal(26_031_728_640 - 32_000L * 5120 * 2, cost.WeightBytes);
            Assert.Equal(12_852_024_320, cost.MatmulParams); // 13,015,864,320 less the 163,840,000 of the embedding table
            Assert.Equal(819_200, cost.KvBytesPerToken);      // 2 × 40 layers × 5120 × 2 bytes: issue 28's "0.82 MB"
            // issue 28's estimate for variant B on workload-640: ~144 rows × ~340 tokens × 0.82 MB + 26 GB ≈ 66 GB a step
            var step = Plan(decodes: Enumerable.Repeat(339, 144));
            Assert.InRange(cost.Bytes(step) / 1e9, 65.6, 66.0);
            // int8 KV blocks (export.py --kv-cache int8): half the KV bytes of every row, the weights' unchanged
            var int8 = StepCost.Of(ModelPackage.Load(folder), kvElementBytes: 1, activationElementBytes: 2);
            Assert.Equal((409_600, cost.WeightBytes), (int8.KvBytesPerToken, int8.WeightBytes));
            Assert.Equal(cost.Bytes(step) - cost.WeightBytes, 2 * (int8.Bytes(step) - int8.WeightBytes));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
    [Fact]
    public void BytesAndFlops_ofAMixedPlan_countEachRowsPastAndNewTokens()
    {
        var cost = new StepCost(WeightBytes: 1000, KvBytesPerToken: 10, WeightElementBytes: 2, AttentionFlopsPerPair: 3);
        // decodes at positions 9 and 19; a chunk of 3 tokens after 4 computed ones
        var plan = Plan(decodes: [9, 19], chunk: (4, 3));

        Assert.Equal(1000 + (10 + 20 + 7) * 10, cost.Bytes(plan));
        // 5 tokens × 500 weights × 2, and pairs: 10 + 20 for the decodes, 5 + 6 + 7 for the chunk's tokens
        Assert.Equal(2.0 * 500 * 5 + 3 * (10 + 20 + 5 + 6 + 7), cost.Flops(plan));
    }

    [Fact]
    public void Engine_oneRequestAtBatch1_sumsTheModelOverItsDecodeOnlySteps()
    {
        using var model = LoadedModel.Open(models.TinyPackage, new EngineOptions { MaxBatchSize = 1, MaxScheduledTokens = 64 });
        var cost = model.Engine.Cost!;
        int[] prompt = [1, 450, 4996, 17354, 1701, 29916];
        model.Engine.Submit(new GenerationRequest("r", prompt, MaxTokens: 12, IgnoreEos: true));
        while (model.Engine.HasWork) model.Engine.Step();

        var statistics = model.Engine.Statistics;
        var files = new DirectoryInfo(models.TinyPackage).EnumerateFiles("model.onnx*").Sum(f => f.Length);
        Assert.Equal(files - 32_000L * 64 * 4, cost.WeightBytes); // dim 64, vocab 32,000, float32
        Assert.Equal(2L * 2 * 2 * 16 * 4, cost.KvBytesPerToken);    // 2 layers, 2 KV heads of 16
        Assert.Equal((1, 11), (statistics.NumPrefillSteps, statistics.NumDecodeOnlySteps));
        // the prefill makes output 1; decodes feed outputs 1–11 at positions 6–16, each reading its past and writing itself
        var kvTokens = Enumerable.Range(6, 11).Sum(position => position + 1);
        Assert.Equal(11.0 * cost.WeightBytes + kvTokens * cost.KvBytesPerToken, statistics.DecodeOnlyBytes);
        Assert.Equal(2.0 * cost.MatmulParams * 6 + cost.AttentionFlopsPerPair * (6 * 7 / 2), statistics.PrefillStepFlops);
        Assert.True(statistics.DecodeBytesPerSecond > 0);
    }

    private static StepPlan Plan(IEnumerable<int> decodes, (int Past, int Length)? chunk = null)
    {
        var rows = decodes.Select((past, i) => new DecodeRow(i, 5, past, new KvSlot(0))).ToImmutableArray();
        ImmutableArray<PrefillChunk> prefills = chunk is { } c
            ? [new PrefillChunk(99, c.Past, [.. Enumerable.Repeat(7, c.Length)], true, new KvSlot(1))]
            : [];
        return new StepPlan(rows, prefills);
    }
}

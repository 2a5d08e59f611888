using System.Text.Json;
using Microsoft.ML.OnnxRuntime.Tensors;
using VicunaBatch.Inference.Tests.Fixtures;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests;

/// <summary>The exported variant-A graph, run with a plain InferenceSession, against model-export/reference.py.</summary>
[Collection("models")]
public sealed class GraphContractTests(ModelFixture models)
{
    private const double Float32Tolerance = 1e-4;
    private const int GreedySteps = 20;

    private static readonly Dictionary<string, int[][]> ModelToPrompts = new()
    {
        ["stories"] = [[1, 403, 407, 261, 378, 259, 30], [1, 72, 500, 3]],
        ["tiny"] = [[1, 7, 4242, 31999, 15, 900, 123], [1, 20000, 9, 31]],
    };

    public static TheoryData<string> Models => ["stories", "tiny"];

    [Theory]
    [MemberData(nameof(Models))]
    public void FullPrompt_lastPositionLogits_matchReference(string model)
    {
        var prompt = ModelToPrompts[model][0];
        var expected = models.Reference(Source(model), [prompt], maxTokens: 1, logits: true)[0];
        using var graph = new GraphSession(Package(model));

        var output = graph.Run([Longs(prompt)], [Ones(prompt.Length)]);

        AssertClose(expected.Logits![0], output.LogitsAt(0, prompt.Length - 1), Float32Tolerance, $"{model} prompt logits");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void GreedyDecode_feedingPresentAsPast_reproducesReferenceIdsAndLogits(string model)
    {
        var prompt = ModelToPrompts[model][0];
        var expected = models.Reference(Source(model), [prompt], GreedySteps, logits: true)[0];
        using var graph = new GraphSession(Package(model));

        var output = graph.Run([Longs(prompt)], [Ones(prompt.Length)]);
        var logits = output.LogitsAt(0, prompt.Length - 1);
        var ids = new List<int>();
        while (true)
        {
            AssertClose(expected.Logits![ids.Count], logits, Float32Tolerance, $"{model} step {ids.Count}");
            ids.Add(ArgMax(logits));
            if (ids.Count == expected.Ids.Count)
            {
                break;
            }

            var past = output.Present;
            Assert.Equal(prompt.Length + ids.Count - 1, past.Length);
            output = graph.Run([[ids[^1]]], [Ones(past.Length + 1)], past);
            logits = output.LogitsAt(0, 0);
        }

        Assert.Equal(expected.Ids, ids);
        Assert.True(ids.Distinct().Count() > 1, $"{model}: degenerate greedy output {string.Join(',', ids)}");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void RightPaddedBatch_eachRowsLastRealLogits_equalRunningItAlone(string model)
    {
        var prompts = ModelToPrompts[model];
        using var graph = new GraphSession(Package(model));
        var width = prompts.Max(p => p.Length);

        var batch = graph.Run(prompts.Select(p => Padded(p, width)).ToArray(), prompts.Select(p => Mask(p.Length, width)).ToArray());

        for (var row = 0; row < prompts.Length; row++)
        {
            var alone = graph.Run([Longs(prompts[row])], [Ones(prompts[row].Length)]);
            var last = prompts[row].Length - 1;
            AssertClose(alone.LogitsAt(0, last), batch.LogitsAt(row, last), 1e-5, $"{model} row {row}");
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void RaggedBatchDecode_afterPaddedPrompts_followsEachRowsReference(string model)
    {
        const int steps = 8;
        var prompts = ModelToPrompts[model];
        var expected = models.Reference(Source(model), prompts, steps, logits: true);
        using var graph = new GraphSession(Package(model));
        var width = prompts.Max(p => p.Length);
        var output = graph.Run(prompts.Select(p => Padded(p, width)).ToArray(), prompts.Select(p => Mask(p.Length, width)).ToArray());
        var rowToLength = prompts.Select(p => p.Length).ToArray();   // tokens in each row's cache
        var rowToLogits = prompts.Select((p, row) => output.LogitsAt(row, p.Length - 1)).ToArray();

        for (var step = 0; step < steps; step++)
        {
            var next = new long[prompts.Length][];
            for (var row = 0; row < prompts.Length; row++)
            {
                var reference = expected[row];
                if (step < reference.Ids.Count)
                {
                    AssertClose(reference.Logits![step], rowToLogits[row], Float32Tolerance, $"{model} row {row} step {step}");
                    Assert.Equal(reference.Ids[step], ArgMax(rowToLogits[row]));
                }

                next[row] = [ArgMax(rowToLogits[row])];
            }

            // Ragged decode: row r's mask has ones over its own cache, zeros over the gap, one for the new token.
            var past = output.Present;
            var masks = rowToLength.Select(length => RaggedMask(length, past.Length + 1)).ToArray();
            output = graph.Run(next, masks, past);
            for (var row = 0; row < prompts.Length; row++)
            {
                rowToLength[row]++;
                rowToLogits[row] = output.LogitsAt(row, 0);
            }
        }
    }

    [Fact]
    public void Float16Tiny_loadsAndRuns_logitsCloseToFloat32()
    {
        var prompt = ModelToPrompts["tiny"][0];
        using var half = new GraphSession(models.Export(models.TinySource + " --dtype float16"));
        using var full = new GraphSession(models.TinyPackage);
        Assert.Equal(TensorElementType.Float16, half.KvType);

        var halfLogits = half.Run([Longs(prompt)], [Ones(prompt.Length)]).LogitsAt(0, prompt.Length - 1);
        var fullLogits = full.Run([Longs(prompt)], [Ones(prompt.Length)]).LogitsAt(0, prompt.Length - 1);

        AssertClose(fullLogits, halfLogits, 0.05, "float16 vs float32");
        Assert.Equal(ArgMax(fullLogits), ArgMax(halfLogits));
    }

    [Fact]
    public void ExternalDataPackage_over100MB_loadsAndMatchesReference()
    {
        const string source = "--config tiny --seed 3 --vocab-size 400000";   // ~205 MB of float32 weights
        var prompt = new[] { 1, 399999, 250000, 42 };
        var package = models.Export(source);
        Assert.True(File.Exists(Path.Combine(package, "model.onnx.data")), "weights above 100 MB go to model.onnx.data");
        var expected = models.Reference(source, [prompt], maxTokens: 1, logits: true)[0];
        using var graph = new GraphSession(package);

        var output = graph.Run([Longs(prompt)], [Ones(prompt.Length)]);

        AssertClose(expected.Logits![0], output.LogitsAt(0, prompt.Length - 1), Float32Tolerance, "external data logits");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void GenaiConfig_describesTheGraphsInputsAndOutputs(string model)
    {
        using var graph = new GraphSession(Package(model));
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(Package(model), "genai_config.json")));
        var search = config.RootElement.GetProperty("search");

        var expectedInputs = new List<string> { "input_ids", "attention_mask" };
        var expectedOutputs = new List<string> { "logits", "greedy_ids" };
        for (var i = 0; i < graph.NumLayers; i++)
        {
            expectedInputs.AddRange([$"past_key_values.{i}.key", $"past_key_values.{i}.value"]);
            expectedOutputs.AddRange([$"present.{i}.key", $"present.{i}.value"]);
        }

        Assert.Equal(expectedInputs, graph.Session.InputMetadata.Keys);
        Assert.Equal(expectedOutputs, graph.Session.OutputMetadata.Keys);
        Assert.Equal([-1, -1, graph.Vocab], graph.Session.OutputMetadata["logits"].Dimensions);
        Assert.Equal([-1, -1], graph.Session.OutputMetadata["greedy_ids"].Dimensions);   // ArgMax over the vocabulary
        Assert.Equal(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Int64, graph.Session.OutputMetadata["greedy_ids"].ElementDataType);
        Assert.Equal([-1, graph.NumKvHeads, -1, graph.HeadSize], graph.Session.InputMetadata["past_key_values.0.key"].Dimensions);
        Assert.Equal(config.RootElement.GetProperty("model").GetProperty("context_length").GetInt32(), search.GetProperty("max_length").GetInt32());
        Assert.True(search.GetProperty("past_present_share_buffer").GetBoolean());
    }

    private string Package(string model) => model == "stories" ? models.StoriesPackage : models.TinyPackage;

    private string Source(string model) => model == "stories" ? models.StoriesSource : models.TinySource;

    private static long[] Longs(int[] ids) => ids.Select(i => (long)i).ToArray();

    private static long[] Ones(int length) => Enumerable.Repeat(1L, length).ToArray();

    private static long[] Padded(int[] ids, int width) => [.. Longs(ids), .. new long[width - ids.Length]];

    private static long[] Mask(int length, int width) => [.. Ones(length), .. new long[width - length]];

    private static long[] RaggedMask(int cached, int total) => [.. Ones(cached), .. new long[total - cached - 1], 1L];

    private static int ArgMax(float[] values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    private static void AssertClose(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var worst = 0;
        for (var i = 1; i < expected.Length; i++)
        {
            if (Math.Abs(expected[i] - actual[i]) > Math.Abs(expected[worst] - actual[worst]))
            {
                worst = i;
            }
        }

        var error = Math.Abs(expected[worst] - actual[worst]);
        Assert.True(error <= tolerance,
            $"{what}: max |error| {error:G4} > {tolerance:G4} at index {worst} (expected {expected[worst]}, got {actual[worst]})");
    }
}

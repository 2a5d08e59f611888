using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Tests.Engine;
using VicunaBatch.Inference.Tests.Fixtures;
using VicunaBatch.Testing;
using Xunit.Abstractions;

namespace VicunaBatch.Inference.Tests;

/// <summary>
/// export.py --dtype int4: MatMul weights as com.microsoft.MatMulNBits. The packing is checked against a float
/// twin (model-export/tools/dequantize_int4.py: each MatMulNBits replaced by MatMul over its dequantized weight);
/// the quantization error is measured against the float32 package (numbers in docs/model-export.md).
/// </summary>
[Collection("models")]
public sealed class ModelExportInt4Tests(ModelFixture models, ITestOutputHelper output)
{
    private static readonly Dictionary<string, int[][]> ModelToPrompts = new()
    {
        ["stories"] = [[1, 403, 407, 261, 378, 259, 30], [1, 72, 500, 3]],
        ["tiny"] = [[1, 7, 4242, 31999, 15, 900, 123], [1, 20000, 9, 31]],
    };

    public static TheoryData<string, string> Packings => new()
    {
        { "stories", "--int4-block-size 32" },
        { "stories", "--int4-block-size 128 --int4-symmetric" },
        { "tiny", "--int4-block-size 64" },
        { "tiny", "--int4-block-size 32 --int4-symmetric" },
    };

    public static TheoryData<string> Models => ["stories", "tiny"];

    [Theory]
    [MemberData(nameof(Packings))]
    public void Int4Package_logitsAndGreedyIds_equalItsDequantizedFloatTwin(string model, string options)
    {
        var package = models.Export($"{Source(model)} --dtype int4 {options}");
        var twin = models.NewDirectory("dequantized");
        models.RunScript("tools/dequantize_int4.py", package, twin);
        using var quantized = new GraphSession(package);
        using var floats = new GraphSession(twin);

        foreach (var prompt in ModelToPrompts[model])
        {
            var expected = floats.Run([Longs(prompt)], [Ones(prompt.Length)]);
            var actual = quantized.Run([Longs(prompt)], [Ones(prompt.Length)]);
            var error = MaxAbsDiff(expected.Logits, actual.Logits);
            Assert.True(error < 1e-3, $"{model} {options}: int4 vs dequantized float max |Δlogit| {error:G4}");
        }
        var options8 = new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 8 };
        var fromInt4 = EngineGoldenTests.Generate(package, ModelToPrompts[model], 20, options8);
        var fromTwin = EngineGoldenTests.Generate(twin, ModelToPrompts[model], 20, options8);
        for (var i = 0; i < ModelToPrompts[model].Length; i++)
        {
            Assert.Equal(fromTwin[$"p{i}"].OutputIds, fromInt4[$"p{i}"].OutputIds);
        }
    }

    /// <summary>Teacher-forced over each prompt plus float32's 20 greedy ids: max |Δlogit| int4 vs float32, every position.</summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void Int4Package_generatesOnCpu_logitErrorAgainstFloat32IsMeasured(string model)
    {
        const int steps = 20;
        var float32 = model == "stories" ? models.StoriesPackage : models.TinyPackage;
        var int4 = models.Export($"{Source(model)} --dtype int4");
        var prompts = ModelToPrompts[model];
        var generated = EngineGoldenTests.Generate(float32, prompts, steps, new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 8 });
        var fromInt4 = EngineGoldenTests.Generate(int4, prompts, steps, new EngineOptions { MaxBatchSize = 2, MaxScheduledTokens = 8 });
        using var full = new GraphSession(float32);
        using var quantized = new GraphSession(int4);

        double worst = 0, sum = 0, maxLogit = 0;
        int count = 0, agree = 0;
        for (var i = 0; i < prompts.Length; i++)
        {
            Assert.Null(fromInt4[$"p{i}"].Error);
            Assert.NotEmpty(fromInt4[$"p{i}"].OutputIds);
            int[] sequence = [.. prompts[i], .. generated[$"p{i}"].OutputIds];
            var expected = full.Run([Longs(sequence)], [Ones(sequence.Length)]);
            var actual = quantized.Run([Longs(sequence)], [Ones(sequence.Length)]);
            for (var pos = prompts[i].Length - 1; pos < sequence.Length; pos++)
            {
                var e = expected.LogitsAt(0, pos);
                var a = actual.LogitsAt(0, pos);
                var error = MaxAbsDiff(e, a);
                worst = Math.Max(worst, error);
                sum += error;
                maxLogit = Math.Max(maxLogit, e.Max(Math.Abs));
                agree += ArgMax(e) == ArgMax(a) ? 1 : 0;
                count++;
            }
        }

        output.WriteLine($"{model} int4 (block 32, zero points) vs float32: max |Δlogit| {worst:G4}, mean of per-position max {sum / count:G4}, " +
                         $"max |logit| {maxLogit:G4}, argmax agrees at {agree}/{count} positions");
        Assert.True(worst > 0, "int4 logits equal float32 exactly: the weights were not quantized");
        // Loose bounds: stories260K (dim 64) loses a lot to 4 bits (docs/model-export.md); garbage weights fail them,
        // and the packing itself is held exactly by Int4Package_logitsAndGreedyIds_equalItsDequantizedFloatTwin.
        Assert.True(worst < maxLogit, $"{model}: int4 max |Δlogit| {worst:G4} against logits up to {maxLogit:G4}");
        Assert.True(agree * 3 > count, $"{model}: int4 argmax agrees with float32 at only {agree}/{count} positions");
    }

    private string Source(string model) => model == "stories" ? models.StoriesSource : models.TinySource;

    private static long[] Longs(int[] ids) => ids.Select(i => (long)i).ToArray();

    private static long[] Ones(int length) => Enumerable.Repeat(1L, length).ToArray();

    private static double MaxAbsDiff(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        }
        return worst;
    }

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
}

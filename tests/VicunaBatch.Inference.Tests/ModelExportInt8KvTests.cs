using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using VicunaBatch.Inference.Tests.Fixtures;
using VicunaBatch.Testing;
using Xunit.Abstractions;

namespace VicunaBatch.Inference.Tests;

/// <summary>
/// export.py --kv-cache int8 (variant B whose KV blocks hold int8, quantized by PagedAttention with each layer's key and
/// value scale) and model-export/kv_scales.py, which calibrates those scales on the numpy reference. What the CPU can
/// check: the scales, ONNX Runtime's schema resolve of the int8 graph, and that every other node is the float16 graph's.
/// The kernel's int8 cache itself runs only on CUDA: scripts/gpu/bench-h100.sh kv8-check.
/// </summary>
[Collection("models")]
public sealed class ModelExportInt8KvTests(ModelFixture models, ITestOutputHelper output)
{
    private static readonly int[][] Prompts = [[1, 7, 4242, 31999, 15, 900, 123], [1, 20000, 9, 31], [1]];

    private string ScalesOf(string name, IEnumerable<int[]> prompts, double margin = 1.0)
    {
        var dir = models.NewDirectory(name);
        var promptsFile = Path.Combine(dir, "prompts.txt");
        File.WriteAllLines(promptsFile, prompts.Select(p => string.Join(',', p)));
        var scales = Path.Combine(dir, "scales.json");
        models.RunScript("kv_scales.py", [.. models.TinySource.Split(' '), "--prompts-file", promptsFile, "--margin", margin.ToString("R"), "--out", scales]);
        return scales;
    }

    private static (double[] Key, double[] Value) Read(string scalesFile)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(scalesFile));
        double[] Of(string kind) => [.. doc.RootElement.GetProperty(kind).EnumerateArray().Select(e => e.GetDouble())];
        return (Of("key"), Of("value"));
    }

    [Fact]
    public void KvScales_areEachLayersLargestKeyAndValueOver127_soMorePromptsTakeTheLarger()
    {
        var first = Read(ScalesOf("scales-first", Prompts[..1]));
        var rest = Read(ScalesOf("scales-rest", Prompts[1..]));
        var all = Read(ScalesOf("scales-all", Prompts));
        var doubled = Read(ScalesOf("scales-margin", Prompts, margin: 2.0));

        Assert.Equal(2, all.Key.Length); // one a layer
        Assert.All(all.Key.Concat(all.Value), s => Assert.True(s > 0 && double.IsFinite(s), $"scale {s}"));
        // the largest |x| over every prompt is the larger of each part's: scales are a max, not a mean
        Assert.Equal(first.Key.Zip(rest.Key, Math.Max), all.Key);
        Assert.Equal(first.Value.Zip(rest.Value, Math.Max), all.Value);
        Assert.NotEqual(first.Key, rest.Key);
        Assert.Equal(all.Key.Select(s => 2 * s), doubled.Key, (a, b) => Math.Abs(a - b) < 1e-12 * a);
    }

    [Fact]
    public void CpuSession_int8KvGraph_passesTheSchemaResolveAsTheFloat16GraphDoes()
    {
        var package = models.Export($"{models.TinySource} --dtype float16 --attention paged --block-size 128 --kv-cache int8 --kv-scales 0.03");
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };

        var e = Assert.Throws<OnnxRuntimeException>(() => new InferenceSession(Path.Combine(package, "model.onnx"), options));
        output.WriteLine(e.Message);

        // int8 key_cache/value_cache and float k_scale/v_scale passed the contrib schema's type constraints (T_CACHE,
        // T_KV_SCALE) at load; what fails is only the CPU provider's float32 casts in front of PagedAttention, as for float16
        Assert.Contains("Type Error: Type 'tensor(float)' of input parameter (InsertedPrecisionFreeCast_", e.Message);
        Assert.Contains("of operator (PagedAttention)", e.Message);
        Assert.DoesNotContain("int8", e.Message);
    }

    [Fact]
    public void CpuTwin_int8KvPackage_computesWhatTheFloat16PackageComputes()
    {
        var scales = ScalesOf("scales-twin", Prompts);
        using var int8 = new PagedTwin(models, models.Export($"{models.TinySource} --dtype float16 --attention paged --block-size 128 --kv-cache int8 --kv-scales {scales}"));
        using var float16 = new PagedTwin(models, models.Export($"{models.TinySource} --dtype float16 --attention paged --block-size 128"));

        foreach (var prompt in Prompts.Select(p => p.Select(t => (long)t).ToArray()))
        {
            Assert.Equal(float16.LastLogits(prompt, 32000), int8.LastLogits(prompt, 32000)); // every node but the cache's type is the same
        }
    }

    [Theory]
    [InlineData("--attention paged --kv-cache int8", "--kv-cache int8 and --kv-scales go together")]
    [InlineData("--kv-cache int8 --kv-scales 0.03", "--kv-cache int8 needs --attention paged")]
    [InlineData("--attention paged --kv-cache int8 --kv-scales 0", "every key scale must be a positive number")]
    [InlineData("--attention paged --kv-cache int8 --kv-scales THREE_LAYERS", "int8 KV: 3 key scales for 2 layers")]
    [InlineData("--attention paged --kv-cache int8 --kv-scales no-such-file.json", "neither a number nor kv_scales.py's JSON")]
    public void Export_int8KvWithoutUsableScales_failsWithTheReason(string options, string message)
    {
        var dir = models.NewDirectory("int8-refused");
        var threeLayers = Path.Combine(dir, "three.json");
        File.WriteAllText(threeLayers, """{"key": [0.1, 0.1, 0.1], "value": [0.1, 0.1, 0.1]}""");
        string[] arguments = [.. models.TinySource.Split(' '), "--dtype", "float16", .. options.Replace("THREE_LAYERS", threeLayers).Split(' '), "--out", Path.Combine(dir, "out")];

        var (exitCode, _, stderr) = models.TryRunScript("export.py", arguments);

        Assert.NotEqual(0, exitCode);
        Assert.Contains(message, stderr);
    }
}

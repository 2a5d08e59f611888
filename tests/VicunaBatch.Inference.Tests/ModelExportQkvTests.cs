using System.Text;
using VicunaBatch.Inference.Tests.Fixtures;
using VicunaBatch.Testing;
using Xunit.Abstractions;

namespace VicunaBatch.Inference.Tests;

/// <summary>
/// export.py --qkv packed (the default: one [d, (H + 2 KVH) hd] MatMul a layer, attention in its packed form) against
/// --qkv separate (three MatMuls): the same numbers, with rotary inside GroupQueryAttention (tiny, head 16) and outside
/// it (stories260K, head 8: the packed output is split for the rotary nodes); and --link-weights, which reuses another
/// package's weights file only when that package lays the weights out the same way.
/// </summary>
[Collection("models")]
public sealed class ModelExportQkvTests(ModelFixture models, ITestOutputHelper output)
{
    private static readonly long[][] Prompts = [[1, 7, 4242, 31999, 15, 900, 123], [1, 20000, 9, 31], [1]];

    [Theory]
    [InlineData("TINY", 2e-5)]
    [InlineData("TINY --dtype float16", 2e-2)]
    [InlineData("TINY --dtype int4", 2e-5)]
    [InlineData("STORIES", 2e-5)]
    public void Packed_and_separate_projections_give_the_same_logits(string source, double tolerance)
    {
        var arguments = source.Replace("TINY", models.TinySource).Replace("STORIES", models.StoriesSource);
        var packed = models.Export(arguments);
        var separate = models.Export(arguments + " --qkv separate");
        Assert.True(StoresInitializer(packed, "model.layers.0.self_attn.qkv_proj.weight"), "the default export stores no packed qkv_proj");
        Assert.False(StoresInitializer(packed, "model.layers.0.self_attn.q_proj.weight"), "the packed export still stores q_proj");
        Assert.True(StoresInitializer(separate, "model.layers.0.self_attn.q_proj.weight"), "--qkv separate stores no q_proj");

        using var a = new GraphSession(packed);
        using var b = new GraphSession(separate);
        foreach (var prompt in Prompts.Select(p => p.Select(id => id % a.Vocab).ToArray()))
        {
            var mask = new[] { Enumerable.Repeat(1L, prompt.Length).ToArray() };
            var fromPacked = a.Run([prompt], mask);
            var fromSeparate = b.Run([prompt], mask);
            for (var position = 0; position < prompt.Length; position++)
            {
                var x = fromPacked.LogitsAt(0, position);
                var y = fromSeparate.LogitsAt(0, position);
                var error = x.Zip(y, (p, q) => Math.Abs(p - q)).Max();
                Assert.True(error <= tolerance, $"prompt of {prompt.Length}, position {position}: max |Δlogit| {error:G4}");
                Assert.Equal(Array.IndexOf(y, y.Max()), Array.IndexOf(x, x.Max()));
            }
        }
    }

    [Fact]
    public void Link_weights_reuses_a_package_with_the_same_layout_and_refuses_another()
    {
        // a vocabulary this large puts the weights above the 100 MiB inline limit, into model.onnx.data, which
        // --link-weights hard-links: embedding and LM head 420,000 x 64 float16 each
        var source = $"{models.TinySource} --dtype float16 --vocab-size 420000";
        var packed = models.Export(source);
        var separate = models.Export(source + " --qkv separate");
        Assert.True(File.Exists(Path.Combine(packed, "model.onnx.data")), "the package keeps its weights inline: raise the vocabulary");

        var refused = models.NewDirectory("linked-refused");
        var (exitCode, _, stderr) = models.TryRunScript("export.py",
            [.. source.Split(' '), "--qkv", "separate", "--attention", "paged", "--link-weights", packed, "--out", refused]);
        Assert.NotEqual(0, exitCode);
        Assert.Contains($"--link-weights {packed}: its model.onnx lays the weights out differently", stderr);
        Assert.Contains("export that package from the same source, seed, dtype and --qkv first", stderr);

        // the same layout links; its CPU twin (every node but PagedAttention) then reads the right weights
        var linked = models.NewDirectory("linked");
        var (linkedExit, _, linkedErr) = models.TryRunScript("export.py",
            [.. source.Split(' '), "--attention", "paged", "--link-weights", packed, "--out", linked]);
        Assert.True(linkedExit == 0, linkedErr);
        Assert.Contains("linked ", linkedErr);
        using var twin = new PagedTwin(models, linked);
        using var gqa = new GraphSession(separate);
        long[] prompt = [1, 7, 4242, 31999, 15];
        var expected = gqa.Run([prompt], [Enumerable.Repeat(1L, prompt.Length).ToArray()]).LogitsAt(0, prompt.Length - 1);
        var actual = twin.LastLogits(prompt, 420000);
        var error = expected.Zip(actual, (p, q) => Math.Abs(p - q)).Max();
        output.WriteLine($"linked paged twin vs separate variant A: max |Δlogit| {error:G3}");
        Assert.True(error < 1e-2, $"max |Δlogit| {error:G4}");
    }

    /// <summary>Whether the package's model.onnx names an initializer (its name is in the protobuf as UTF-8).</summary>
    private static bool StoresInitializer(string package, string name) =>
        File.ReadAllBytes(Path.Combine(package, "model.onnx")).AsSpan().IndexOf(Encoding.UTF8.GetBytes(name)) >= 0;
}

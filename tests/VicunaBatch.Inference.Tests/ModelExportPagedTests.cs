using Microsoft.ML.OnnxRuntime;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;
using VicunaBatch.Inference.Tests.Fixtures;
using VicunaBatch.Testing;
using Xunit.Abstractions;

namespace VicunaBatch.Inference.Tests;

/// <summary>
/// export.py --attention paged (variant B) on a machine without a GPU: the package's config, the engine's refusal on
/// the CPU, ONNX Runtime's own load-time graph check (what fails is only the CPU provider's casts around PagedAttention),
/// and the numbers of every node but PagedAttention through model-export/tools/paged_twin.py, against
/// variant A exported with the same seed. PagedAttention itself runs only on CUDA: scripts/gpu/bench-h100.sh paged-check.
/// </summary>
[Collection("models")]
public sealed class ModelExportPagedTests(ModelFixture models, ITestOutputHelper output)
{
    private static readonly int[][] Prompts = [[1, 7, 4242, 31999, 15, 900, 123], [1, 20000, 9, 31], [1]];

    private string PagedPackage => models.Export($"{models.TinySource} --dtype float16 --attention paged --block-size 128");

    private string GqaPackage => models.Export($"{models.TinySource} --dtype float16");

    [Fact]
    public void Config_pagedPackage_namesThePagedInputsAndItsBlockSize()
    {
        var paged = ModelPackage.Load(PagedPackage).Config;
        var gqa = ModelPackage.Load(GqaPackage).Config;

        Assert.Equal(AttentionVariant.Paged, paged.Attention);
        Assert.Equal((128, 256, 2048), (paged.DynamicBatching!.BlockSize, paged.DynamicBatching.MaxBatchSize, paged.DynamicBatching.MaxScheduledTokens));
        Assert.Equal(
            ("cumulative_sequence_lengths", "past_sequence_lengths", "block_table", "attention_metadata"),
            (paged.Model.Decoder.Inputs!.CumulativeSequenceLengths, paged.Model.Decoder.Inputs.PastSequenceLengths,
                paged.Model.Decoder.Inputs.BlockTable, paged.Model.Decoder.Inputs.AttentionMetadata));
        Assert.Equal(AttentionVariant.GroupQuery, gqa.Attention);
        Assert.Null(gqa.DynamicBatching);
    }

    [Fact]
    public void Open_pagedPackageOnTheCpu_failsNamingTheVariantAndWhatToDo()
    {
        var e = Assert.Throws<NotSupportedException>(() => LoadedModel.Open(PagedPackage, new EngineOptions()));

        Assert.Contains("is a paged-attention package (ONNX_CONTRACT.md variant B, com.microsoft.PagedAttention), which ONNX Runtime runs on CUDA only", e.Message);
        Assert.Contains("export variant A for the CPU (model-export/export.py without --attention paged)", e.Message);
    }

    [Fact]
    public void CpuSession_pagedGraph_loadsAndFailsOnlyWhereTheCpuProviderCastsAroundPagedAttention()
    {
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
        var e = Assert.Throws<OnnxRuntimeException>(() => new InferenceSession(Path.Combine(PagedPackage, "model.onnx"), options));
        output.WriteLine(e.Message);

        // The exported graph passed the load-time resolve (types and shapes against the contrib schemas: an error there
        // names one of the exporter's own tensors). Then the CPU provider, which has float16 MatMul only via casts and no
        // PagedAttention kernel, inserts float32 casts in front of PagedAttention, and the re-resolve rejects those.
        Assert.Contains("Type Error: Type 'tensor(float)' of input parameter (InsertedPrecisionFreeCast_", e.Message);
        Assert.Contains("of operator (PagedAttention)", e.Message);
    }

    [Fact]
    public void CpuTwin_onePromptNoPast_matchesVariantALastPositionLogits()
    {
        using var twin = new PagedTwin(models, PagedPackage);
        using var gqa = new GraphSession(GqaPackage);

        foreach (var prompt in Prompts)
        {
            var expected = gqa.Run([prompt.Select(t => (long)t).ToArray()], [Enumerable.Repeat(1L, prompt.Length).ToArray()])
                .LogitsAt(0, prompt.Length - 1);
            var actual = twin.LastLogits(prompt.Select(t => (long)t).ToArray(), 32000);
            var error = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
            output.WriteLine($"prompt of {prompt.Length}: max |Δlogit| {error:G3}");
            Assert.True(error < 1e-2, $"prompt of {prompt.Length}: paged twin vs variant A max |Δlogit| {error:G4}");
            Assert.Equal(Array.IndexOf(expected, expected.Max()), Array.IndexOf(actual, actual.Max()));
        }
    }

    [Theory]
    [InlineData("--config tiny --seed 1", "--attention paged needs float16 activations")]
    [InlineData("--config tiny --seed 1 --dtype float16 --block-size 96", "--block-size must be a power of two >= 16, got 96")]
    [InlineData("STORIES --dtype float16", "needs head_size % 16 == 0; this model's head_size is 8: export variant A")]
    public void Export_pagedWhatPagedAttentionCannotRun_failsWithTheReason(string source, string message)
    {
        var arguments = source.Replace("STORIES", models.StoriesSource).Split(' ');
        var (exitCode, _, stderr) = models.TryRunScript("export.py", [.. arguments, "--attention", "paged", "--out", models.NewDirectory("refused")]);

        Assert.NotEqual(0, exitCode);
        Assert.Contains(message, stderr);
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;
using VicunaBatch.Inference.Tests.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests;

/// <summary>
/// export.py --from-hf and --base/--delta: a Hugging Face checkpoint made from stories260K by
/// model-export/tools/llama2c_to_hf.py (q/k permuted to half-split, safetensors) exports to the same model.
/// </summary>
[Collection("models")]
public sealed class ModelExportHfTests(ModelFixture models)
{
    private const int MaxTokens = 30;

    private static readonly int[][] Prompts =
    [
        [1],
        [1, 403, 407, 261, 378],
        [1, 320, 285, 300, 261, 291, 274, 318, 424, 266, 302],
        [1, 72, 500, 3],
    ];

    private static readonly EngineOptions Options = new() { MaxBatchSize = 4, MaxScheduledTokens = 16 };

    [Fact]
    public void FromHf_shardedFloat32Checkpoint_greedyIdsEqualTheLlama2cPackage()
    {
        var hf = models.StoriesAsHf("--dtype", "F32", "--shards", "2");
        Assert.True(File.Exists(Path.Combine(hf, "model.safetensors.index.json")));
        var package = models.Export($"--from-hf {hf}");

        var fromHf = EngineGoldenTests.Generate(package, Prompts, MaxTokens, Options);
        var fromLlama2c = EngineGoldenTests.Generate(models.StoriesPackage, Prompts, MaxTokens, Options);

        for (var i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(fromLlama2c[$"p{i}"].OutputIds, fromHf[$"p{i}"].OutputIds);
            Assert.True(fromHf[$"p{i}"].OutputIds.Distinct().Count() > 1, "degenerate greedy output");
        }
        AssertPackagesMatch(package, models.StoriesPackage, rtol: 0);   // same floats, bit for bit
    }

    [Fact]
    public void FromHf_bfloat16Checkpoint_engineFollowsReferenceReadingTheSameFolder()
    {
        var hf = models.StoriesAsHf("--dtype", "BF16");
        var package = models.Export($"--from-hf {hf}");
        var reference = models.Reference($"--from-hf {hf}", Prompts, MaxTokens, logits: false);

        var results = EngineGoldenTests.Generate(package, Prompts, MaxTokens, Options);

        for (var i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(WithoutEos(reference[i].Ids), results[$"p{i}"].OutputIds);
        }
        // bf16 keeps 8 significant bits: every weight within 2^-8 of the float32 original (relative to the tensor's max)
        AssertPackagesMatch(package, models.StoriesPackage, rtol: 1.0 / 256);
        Assert.Equal(1, models.TryRunScript("tools/compare_packages.py", package, models.StoriesPackage, "--rtol", "1e-6").ExitCode);
    }

    [Fact]
    public void Delta_baseWithSmallerVocabPlusDelta_reproducesTheTarget()
    {
        var target = models.StoriesAsHf("--dtype", "F32");
        var baseDir = models.NewDirectory("hf-base");
        var delta = models.NewDirectory("hf-delta");
        // base = target + noise with 500 of the 512 vocab rows; delta = target - base, extra rows the target's own
        models.RunScript("tools/make_delta.py", "--target", target, "--make-base", baseDir, "--seed", "7", "--base-vocab", "500", "--out", delta);
        var applied = models.Export($"--base {baseDir} --delta {delta}");
        var targetPackage = models.Export($"--from-hf {target}");

        AssertPackagesMatch(applied, targetPackage, rtol: 1e-6);
        var fromDelta = EngineGoldenTests.Generate(applied, Prompts, MaxTokens, Options);
        var fromTarget = EngineGoldenTests.Generate(targetPackage, Prompts, MaxTokens, Options);
        for (var i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(fromTarget[$"p{i}"].OutputIds, fromDelta[$"p{i}"].OutputIds);
        }
        var reference = models.Reference($"--base {baseDir} --delta {delta}", Prompts, MaxTokens, logits: false);
        Assert.Equal(WithoutEos(reference[1].Ids), fromDelta["p1"].OutputIds);
        // the base alone is a different model: the comparison can fail
        Assert.Equal(1, models.TryRunScript("tools/compare_packages.py", models.Export($"--from-hf {baseDir}"), targetPackage).ExitCode);
    }

    [Fact]
    public void FromHf_generationConfig_setsEosAndSearchDefaults()
    {
        var hf = models.StoriesAsHf("--dtype", "F16");
        File.WriteAllText(Path.Combine(hf, "generation_config.json"),
            """{"bos_token_id": 1, "eos_token_id": [2, 5], "pad_token_id": 0, "do_sample": true, "temperature": 0.7, "top_p": 0.6, "top_k": 20, "max_length": 4096}""");
        File.Copy(Path.Combine(models.SharedDir, "models", "llama-tokenizer.model"), Path.Combine(hf, "tokenizer.model"));
        var package = models.Export($"--from-hf {hf} --dtype float16");

        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(package, "genai_config.json")));
        var model = config.RootElement.GetProperty("model");
        var search = config.RootElement.GetProperty("search");
        Assert.Equal([2, 5], model.GetProperty("eos_token_id").EnumerateArray().Select(e => e.GetInt32()));
        Assert.True(search.GetProperty("do_sample").GetBoolean());
        Assert.Equal(0.7, search.GetProperty("temperature").GetDouble(), 6);
        Assert.Equal(0.6, search.GetProperty("top_p").GetDouble(), 6);
        Assert.Equal(20, search.GetProperty("top_k").GetInt32());
        Assert.Equal(512, search.GetProperty("max_length").GetInt32());   // clamped to max_position_embeddings
        Assert.True(File.Exists(Path.Combine(package, "tokenizer.model")), "the folder's tokenizer.model is copied");
        Assert.Equal([2, 5], ModelPackage.Load(package).Config.Model.EosTokenIds);
    }

    [Fact]
    public void FromHf_transformers5ConfigWithRopeParameters_exportsItsThetaAndEpsAndFollowsReference()
    {
        // transformers 5's save_pretrained writes rope_parameters (no rope_theta) and head_dim, attention_bias, mlp_bias
        var hf = models.StoriesAsHf("--dtype", "F32");
        var configPath = Path.Combine(hf, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config.Remove("rope_theta");
        config["rope_parameters"] = new JsonObject { ["rope_type"] = "default", ["rope_theta"] = 500.0 };
        config["rms_norm_eps"] = 3e-6;
        config["head_dim"] = 8;
        config["attention_bias"] = false;
        config["mlp_bias"] = false;
        File.WriteAllText(configPath, config.ToJsonString());
        var package = models.Export($"--from-hf {hf}");
        var reference = models.Reference($"--from-hf {hf}", Prompts, MaxTokens, logits: true);

        // the graph holds them (norm epsilon, cos/sin caches); GenAI refuses them in genai_config.json
        using var genai = JsonDocument.Parse(File.ReadAllText(Path.Combine(package, "genai_config.json")));
        var decoder = genai.RootElement.GetProperty("model").GetProperty("decoder");
        Assert.False(decoder.TryGetProperty("rope_theta", out _));
        Assert.False(decoder.TryGetProperty("rms_norm_eps", out _));
        var requests = Prompts.Select((p, i) => new GenerationRequest($"p{i}", p, MaxTokens, ReturnLogits: true));
        using var model = LoadedModel.Open(package, Options);
        var results = Run(model.Engine, requests);
        var differsFromStories = false;
        var storiesIds = EngineGoldenTests.Generate(models.StoriesPackage, Prompts, MaxTokens, Options);
        for (var i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(WithoutEos(reference[i].Ids), results[$"p{i}"].OutputIds);
            for (var step = 0; step < results[$"p{i}"].Logits!.Count; step++)
            {
                var error = reference[i].Logits![step].Zip(results[$"p{i}"].Logits![step], (a, b) => Math.Abs(a - b)).Max();
                Assert.True(error <= 1e-4, $"p{i} step {step}: max |Δlogit| {error:G3}");
            }
            differsFromStories |= !storiesIds[$"p{i}"].OutputIds.SequenceEqual(results[$"p{i}"].OutputIds);
        }
        Assert.True(differsFromStories, "theta 500 and eps 3e-6 left every greedy id as stories260K's: were they read?");
    }

    [Fact]
    public void FromHf_ropeParametersOtherThanDefault_isRefused()
    {
        var hf = models.StoriesAsHf("--dtype", "F32");
        var configPath = Path.Combine(hf, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["rope_parameters"] = new JsonObject { ["rope_type"] = "linear", ["rope_theta"] = 10000.0, ["factor"] = 2.0 };
        File.WriteAllText(configPath, config.ToJsonString());

        var (exitCode, _, stderr) = models.TryRunScript("export.py", "--from-hf", hf, "--out", models.NewDirectory("refused"));

        Assert.Equal(1, exitCode);
        Assert.Contains("only plain rotary (rope_type default) is supported", stderr);
    }

    private static Dictionary<string, GenerationResult> Run(InferenceEngine engine, IEnumerable<GenerationRequest> requests)
    {
        foreach (var request in requests)
        {
            engine.Submit(request);
        }
        var results = new Dictionary<string, GenerationResult>();
        while (engine.HasWork)
        {
            foreach (var result in engine.Step())
            {
                results.Add(result.Id, result);
            }
        }
        return results;
    }

    private void AssertPackagesMatch(string actual, string expected, double rtol)
    {
        var (exitCode, stdout, stderr) = models.TryRunScript("tools/compare_packages.py", actual, expected, "--rtol", rtol.ToString("R"));
        Assert.True(exitCode == 0, $"compare_packages.py: {stdout}\n{stderr}");
    }

    private static List<int> WithoutEos(IReadOnlyList<int> ids) =>
        ids.Count > 0 && ids[^1] == 2 ? ids.Take(ids.Count - 1).ToList() : ids.ToList();
}

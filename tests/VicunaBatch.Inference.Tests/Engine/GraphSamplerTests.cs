using Microsoft.ML.OnnxRuntime;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Onnx;
using VicunaBatch.Inference.Package;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// <c>sampler.onnx</c> (<see cref="GraphSampler"/>, run on the CPU provider here; on CUDA it reads device logits the same
/// way) draws the tokens the host <see cref="Sampler"/> draws from the same logits and uniforms, and the engine with
/// <see cref="SamplingSite.Graph"/> generates what it does with <see cref="SamplingSite.Host"/>.
/// </summary>
[Collection("models")]
public sealed class GraphSamplerTests(ModelFixture models)
{
    [Theory]
    [InlineData(1000)]
    [InlineData(32000)] // Vicuna's vocabulary
    public void Graph_drawsTheHostSamplersTokens(int vocab)
    {
        var random = new Random(20261201);
        const int numRows = 12;
        var logits = RandomLogits(random, numRows, vocab);
        float[] temperatures = [0.3f, 0.7f, 1f, 1.5f];
        float[] topPs = [1f, 1f, 0.95f, 0.9f, 0.5f, 0.05f];
        var rows = new List<int>();
        var picks = new List<GraphPick>();
        for (var i = 0; i < 240; i++)
        {
            rows.Add(random.Next(numRows));
            var sampling = new SamplingParams(temperatures[i % temperatures.Length], TopP: topPs[i / 4 % topPs.Length]);
            picks.Add(new GraphPick(sampling, Sampler.Uniform(new SamplingRng((ulong)i))));
        }

        var graph = RunGraph(logits, vocab, rows, picks);

        var sampler = new Sampler();
        var host = rows.Select((row, i) => sampler.Sample(logits.AsSpan(row * vocab, vocab), picks[i].Sampling, picks[i].Uniform)).ToArray();
        Assert.Equal(host, graph);
        // the argmax of each row would be at most numRows distinct tokens
        Assert.True(graph.Distinct().Count() > numRows, $"only {graph.Distinct().Count()} distinct tokens: the draws did not spread");
    }

    [Fact]
    public void Graph_samplesEachPickFromItsOwnRow()
    {
        const int vocab = 64, numRows = 5;
        var logits = new float[numRows * vocab];
        for (var row = 0; row < numRows; row++)
        {
            logits[row * vocab + row * 7] = 50f; // row r: token 7r, e^100 above the rest at temperature 0.5
        }
        var cold = new SamplingParams(Temperature: 0.5f, TopP: 0.9f);
        int[] rows = [3, 0, 4, 3];

        var tokens = RunGraph(logits, vocab, rows, rows.Select(_ => new GraphPick(cold, 0.7f)).ToList());

        Assert.Equal(rows.Select(r => r * 7), tokens);
    }

    [Fact]
    public void Graph_refusesTopK_whichSamplesOnTheHost()
    {
        var logits = new float[2 * 64];

        var error = Assert.Throws<ArgumentException>(() => RunGraph(logits, 64, [0], [new GraphPick(new SamplingParams(1f, TopK: 5), 0.5f)]));

        Assert.Contains("without top-k", error.Message);
        Assert.False(new SamplingParams(1f, TopK: 64).CutsTopK(64)); // k = vocab cuts nothing: the graph takes it
    }

    [Fact]
    public void EmbeddedGraph_isWhatSamplerGraphPyWrites()
    {
        var written = Path.Combine(Path.GetTempPath(), $"sampler-{Guid.NewGuid():N}.onnx");
        try
        {
            models.RunScript("sampler_graph.py", written);
            Assert.Equal(File.ReadAllBytes(written), GraphSampler.ReadGraph());
        }
        finally
        {
            File.Delete(written);
        }
    }

    [Fact]
    public void Engine_samplingInTheGraph_generatesWhatTheHostSamplerDoes()
    {
        // Temperatures low enough that a draw is not decided in the last bit: ONNX Runtime's Exp and .NET's differ
        // there, and over the ~30,000 tokens a random-weight model keeps at temperature 0.8 that can move a draw to the
        // neighbouring id (at 0.8 and top-p 0.9, one of the 36 draws of the three such requests here did). The draws still leave the greedy tokens (below).
        var prompts = EngineLogitsTests.Prompts;
        var requests = prompts.SelectMany((p, i) => new[]
        {
            new GenerationRequest($"greedy{i}", p, 12, IgnoreEos: true),
            new GenerationRequest($"warm{i}", p, 12, new SamplingParams(Temperature: 0.3f, TopP: 0.9f, Seed: (ulong)(100 + i)), IgnoreEos: true),
            new GenerationRequest($"hot{i}", p, 12, new SamplingParams(Temperature: 0.5f, TopK: 40, Seed: (ulong)(200 + i)), IgnoreEos: true),
            new GenerationRequest($"logits{i}", p, 12, new SamplingParams(Temperature: 1f, Seed: (ulong)(300 + i)), IgnoreEos: true, ReturnLogits: true),
        }).ToList();

        var (inGraph, graph) = Generate(SamplingSite.Graph, requests, out var plans);
        var (onHost, host) = Generate(SamplingSite.Host, requests, out _);

        Assert.True(inGraph);
        Assert.False(onHost);
        foreach (var request in requests)
        {
            Assert.Equal(12, graph[request.Id].OutputIds.Count);
            Assert.Equal(host[request.Id].OutputIds, graph[request.Id].OutputIds);
        }
        Assert.All(prompts.Select((_, i) => graph[$"logits{i}"]), r => Assert.Equal(12, r.Logits!.Count)); // its rows still came up
        // the graph drew the warm requests' tokens; the top-k ("hot") and logits ones were sampled on the host
        Assert.Equal(prompts.Length * 12, plans.Sum(p => p.GraphPicks.Values.Count(g => g.Sampling.TopP == 0.9f)));
        Assert.DoesNotContain(plans, p => p.GraphPicks.Values.Any(g => g.Sampling.TopK > 0 || g.Sampling.Temperature == 1f));
        // the sampled requests really sampled: at these temperatures they leave the greedy tokens
        Assert.Contains(Enumerable.Range(0, prompts.Length), i => !graph[$"warm{i}"].OutputIds.SequenceEqual(graph[$"greedy{i}"].OutputIds));
        Assert.Contains(Enumerable.Range(0, prompts.Length), i => !graph[$"hot{i}"].OutputIds.SequenceEqual(graph[$"greedy{i}"].OutputIds));
    }

    [Fact]
    public void Cpu_samplesOnTheHostByDefault()
    {
        using var model = LoadedModel.Open(models.TinyPackage, new EngineOptions { MaxBatchSize = 2 });

        Assert.False(model.Engine.SamplesInGraph);
    }

    /// <summary>The requests together in one engine over the tiny package's real runner; the plans it was given.</summary>
    private (bool SamplesInGraph, Dictionary<string, GenerationResult> Results) Generate(SamplingSite site, IEnumerable<GenerationRequest> requests,
        out List<StepPlan> plans)
    {
        var package = ModelPackage.Load(models.TinyPackage);
        var options = new EngineOptions
        {
            MaxBatchSize = EngineLogitsTests.Options.MaxBatchSize, MaxScheduledTokens = EngineLogitsTests.Options.MaxScheduledTokens, Sampling = site,
        };
        var (inner, kvCache) = EngineVariant.Of(package).Open(package, options, package.Config.Model.ContextLength);
        var runner = new RecordingRunner(inner);
        using var engine = new InferenceEngine(runner, kvCache, options, new ModelVocabulary(package.Config.Model.EosTokenIds, null));
        plans = runner.Plans;
        return (engine.SamplesInGraph, EngineRuns.RunTogether(engine, requests));
    }

    private sealed class RecordingRunner(IStepRunner inner) : IStepRunner
    {
        public List<StepPlan> Plans { get; } = [];

        public int VocabSize => inner.VocabSize;

        public int NumSlots => inner.NumSlots;

        public int MaxLength => inner.MaxLength;

        public long KvCacheBytes => inner.KvCacheBytes;

        public int KvElementBytes => inner.KvElementBytes;

        public int ActivationElementBytes => inner.ActivationElementBytes;

        public bool SelectsGreedyInGraph => inner.SelectsGreedyInGraph;

        public bool SamplesInGraph => inner.SamplesInGraph;

        public StepOutputs Execute(StepPlan plan)
        {
            Plans.Add(plan);
            return inner.Execute(plan);
        }

        public void Dispose() => inner.Dispose();
    }

    /// <summary>Trained-model-like rows: spread logits with a few far ahead, so every cut keeps a different head.</summary>
    private static float[] RandomLogits(Random random, int numRows, int vocab)
    {
        var logits = new float[numRows * vocab];
        for (var i = 0; i < logits.Length; i++)
        {
            logits[i] = (float)(random.NextDouble() * 6 - 3);
        }
        for (var row = 0; row < numRows; row++)
        {
            for (var k = 0; k < 8; k++)
            {
                logits[row * vocab + random.Next(vocab)] += 4f + k;
            }
        }
        return logits;
    }

    private static int[] RunGraph(float[] logits, int vocab, IReadOnlyList<int> rows, IReadOnlyList<GraphPick> picks)
    {
        using var sampler = new GraphSampler(ExecutionDevice.Cpu, rows.Count, pinned: false);
        using var buffer = new NativeBuffer(4L * logits.Length);
        logits.CopyTo(buffer.AsSpan<float>(logits.Length));
        var tokens = new int[rows.Count];
        sampler.Run(OrtMemoryInfo.DefaultInstance, buffer.At(0), logits.Length / vocab, vocab, rows.ToArray(), picks.ToArray(), tokens);
        return tokens;
    }
}

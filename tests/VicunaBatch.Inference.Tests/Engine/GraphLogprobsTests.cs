using Microsoft.ML.OnnxRuntime;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Onnx;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// <c>logprobs.onnx</c> (<see cref="GraphLogprobs"/>, run on the CPU provider here; on CUDA it reads device logits the
/// same way) gives what the host's <see cref="TokenLogprobs.Of"/> gives from the same rows, ties included, and the engine
/// with <see cref="SamplingSite.Graph"/> returns the log probabilities it returns with <see cref="SamplingSite.Host"/>
/// without reading a logits row.
/// </summary>
[Collection("models")]
public sealed class GraphLogprobsTests(ModelFixture models)
{
    private const float Tolerance = 1e-4f;

    [Theory]
    [InlineData(1000)]
    [InlineData(32000)] // Vicuna's vocabulary
    public void Graph_givesTheHostsLogprobs_onRandomLogits(int vocab)
    {
        var random = new Random(20261207);
        const int numRows = 9;
        var logits = new float[numRows * vocab];
        for (var i = 0; i < logits.Length; i++) logits[i] = (float)(random.NextDouble() * 16 - 8);
        var rows = Enumerable.Range(0, 40).Select(_ => random.Next(numRows)).ToArray();
        var tokens = rows.Select(_ => random.Next(vocab)).ToArray();

        var graph = RunGraph(logits, vocab, rows, tokens);

        for (var i = 0; i < rows.Length; i++)
        {
            var host = TokenLogprobs.Of(logits.AsSpan(rows[i] * vocab, vocab), tokens[i], TokenLogprobs.MaxTop, new float[vocab]);
            AssertSame(host, graph[i]);
        }
    }

    [Fact]
    public void Graph_ranksEqualLogitsByTheLowerId_asTheHostDoes()
    {
        const int vocab = 300;
        var logits = new float[3 * vocab];           // row 0: all equal
        for (var id = 0; id < vocab; id++)
        {
            logits[vocab + id] = id % 4;             // row 1: four levels, 75 ids on each
            logits[2 * vocab + id] = id % 7 == 3 ? 2f : 0f; // row 2: 43 ids tied on top, from id 3 by 7s
        }
        int[] rows = [0, 1, 2];

        var graph = RunGraph(logits, vocab, rows, [5, 7, 10]);

        Assert.Equal(Enumerable.Range(0, TokenLogprobs.MaxTop), graph[0].Top.Select(e => e.TokenId));
        Assert.All(graph[0].Top, e => Assert.Equal(-MathF.Log(vocab), e.Logprob, Tolerance));
        Assert.Equal(Enumerable.Range(0, TokenLogprobs.MaxTop).Select(k => 3 + 4 * k), graph[1].Top.Select(e => e.TokenId));
        Assert.Equal(Enumerable.Range(0, TokenLogprobs.MaxTop).Select(k => 3 + 7 * k), graph[2].Top.Select(e => e.TokenId));
        for (var i = 0; i < rows.Length; i++)
        {
            AssertSame(TokenLogprobs.Of(logits.AsSpan(i * vocab, vocab), graph[i].Chosen.TokenId, TokenLogprobs.MaxTop, new float[vocab]), graph[i]);
        }
    }

    [Fact]
    public void Graph_vocabularySmallerThanMaxTop_givesEveryToken()
    {
        float[] logits = [1f, 3f, 2f, 0f, 3f];

        var graph = RunGraph(logits, 5, [0], [2]);

        Assert.Equal([1, 4, 2, 0, 3], graph[0].Top.Select(e => e.TokenId));
        AssertSame(TokenLogprobs.Of(logits, 2, TokenLogprobs.MaxTop, new float[5]), graph[0]);
    }

    [Fact]
    public void EmbeddedGraph_isWhatLogprobsGraphPyWrites()
    {
        var written = Path.Combine(Path.GetTempPath(), $"logprobs-{Guid.NewGuid():N}.onnx");
        try
        {
            models.RunScript("logprobs_graph.py", written);
            Assert.Equal(File.ReadAllBytes(written), GraphLogprobs.ReadGraph());
        }
        finally
        {
            File.Delete(written);
        }
    }

    [Fact]
    public void Engine_logprobsInTheGraph_areTheHostsAndReadNoLogitsRow()
    {
        // greedy and sampled (temperatures low enough that the two sides' exp cannot move a draw; see GraphSamplerTests)
        var prompts = EngineLogitsTests.Prompts;
        var requests = prompts.SelectMany((p, i) => new[]
        {
            new GenerationRequest($"greedy{i}", p, 12, IgnoreEos: true, TopLogprobs: 5),
            new GenerationRequest($"warm{i}", p, 12, new SamplingParams(Temperature: 0.3f, TopP: 0.9f, Seed: (ulong)(100 + i)), IgnoreEos: true,
                TopLogprobs: TokenLogprobs.MaxTop),
            new GenerationRequest($"none{i}", p, 12, IgnoreEos: true, TopLogprobs: 0),
        }).ToList();

        var (graph, graphStatistics) = Generate(SamplingSite.Graph, requests);
        var (host, hostStatistics) = Generate(SamplingSite.Host, requests);

        Assert.Equal(0, graphStatistics.NumLogitRowsRead);
        Assert.True(graphStatistics.NumGraphLogprobRuns > 0);
        Assert.Equal(requests.Count * 12, hostStatistics.NumLogitRowsRead); // every token of every request, greedy ones too
        Assert.Equal(0, hostStatistics.NumGraphLogprobRuns);
        foreach (var request in requests)
        {
            var expected = host[request.Id];
            var got = graph[request.Id];
            Assert.Equal(12, got.OutputIds.Count);
            Assert.Equal(expected.OutputIds, got.OutputIds);
            Assert.Equal(12, got.Logprobs!.Count);
            for (var step = 0; step < 12; step++)
            {
                Assert.Equal(request.TopLogprobs, got.Logprobs[step].Top.Count);
                AssertSame(expected.Logprobs![step], got.Logprobs[step]);
            }
        }
        Assert.Contains(Enumerable.Range(0, prompts.Length), i => !graph[$"warm{i}"].OutputIds.SequenceEqual(graph[$"greedy{i}"].OutputIds));
    }

    [Fact]
    public void Engine_logprobsWithReturnedLogits_stillReadTheRow()
    {
        var prompt = EngineLogitsTests.Prompts[0];
        var request = new GenerationRequest("both", prompt, 6, IgnoreEos: true, ReturnLogits: true, TopLogprobs: 3);

        var (results, statistics) = Generate(SamplingSite.Graph, [request]);

        Assert.Equal(6, statistics.NumLogitRowsRead);
        Assert.Equal(0, statistics.NumGraphLogprobRuns);
        var result = results["both"];
        for (var step = 0; step < 6; step++)
        {
            AssertSame(TokenLogprobs.Of(result.Logits![step], result.OutputIds[step], 3, new float[result.Logits[step].Length]), result.Logprobs![step]);
        }
    }

    [Fact]
    public void Engine_choicesWithLogprobs_forkFromChoiceZerosRow_thenTakeThemInTheGraph()
    {
        var request = new GenerationRequest("n", EngineLogitsTests.Prompts[2], 8, new SamplingParams(Temperature: 0.3f, TopP: 0.9f, Seed: 5),
            IgnoreEos: true, TopLogprobs: 4, NumChoices: 3);

        var (graph, graphStatistics) = GenerateChoices(SamplingSite.Graph, request);
        var (host, hostStatistics) = GenerateChoices(SamplingSite.Host, request);

        Assert.Equal(2, graphStatistics.NumForkedChoices);
        Assert.Equal(1, graphStatistics.NumLogitRowsRead); // choice 0's last prompt row: its forks sample their first tokens from it
        Assert.Equal(3 * 8 - 2, hostStatistics.NumLogitRowsRead); // every token's row, the forks' first ones shared with choice 0
        Assert.Equal(3, graph.Count);
        foreach (var (choice, result) in graph)
        {
            Assert.Equal(host[choice].OutputIds, result.OutputIds);
            Assert.Equal(8, result.Logprobs!.Count);
            for (var step = 0; step < 8; step++) AssertSame(host[choice].Logprobs![step], result.Logprobs[step]);
        }
        Assert.Equal(3, graph.Values.Select(r => string.Join(',', r.OutputIds)).Distinct().Count()); // the choices drew apart
    }

    /// <summary>One request of several choices in the tiny package's engine (4 slots, room to fork): results by choice.</summary>
    private (Dictionary<int, GenerationResult> Results, EngineStatistics Statistics) GenerateChoices(SamplingSite site, GenerationRequest request)
    {
        using var model = LoadedModel.Open(models.TinyPackage, new EngineOptions { MaxBatchSize = 4, MaxScheduledTokens = 16, Sampling = site });
        model.Engine.Submit(request);
        var results = new Dictionary<int, GenerationResult>();
        while (model.Engine.HasWork)
        {
            foreach (var result in model.Engine.Step()) results.Add(result.Choice, result);
        }
        return (results, model.Engine.Statistics);
    }

    private (Dictionary<string, GenerationResult> Results, EngineStatistics Statistics) Generate(SamplingSite site, IEnumerable<GenerationRequest> requests)
    {
        var options = new EngineOptions
        {
            MaxBatchSize = EngineLogitsTests.Options.MaxBatchSize, MaxScheduledTokens = EngineLogitsTests.Options.MaxScheduledTokens, Sampling = site,
        };
        using var model = LoadedModel.Open(models.TinyPackage, options);
        return (EngineRuns.RunTogether(model.Engine, requests), model.Engine.Statistics);
    }

    /// <summary>Same chosen token, same top ids in the same order, log probabilities within <see cref="Tolerance"/>.</summary>
    private static void AssertSame(TokenLogprobs expected, TokenLogprobs actual)
    {
        Assert.Equal(expected.Chosen.TokenId, actual.Chosen.TokenId);
        Assert.Equal(expected.Chosen.Logprob, actual.Chosen.Logprob, Tolerance);
        Assert.Equal(expected.Top.Select(e => e.TokenId), actual.Top.Select(e => e.TokenId));
        for (var k = 0; k < expected.Top.Count; k++) Assert.Equal(expected.Top[k].Logprob, actual.Top[k].Logprob, Tolerance);
    }

    private static TokenLogprobs[] RunGraph(float[] logits, int vocab, int[] rows, int[] tokens)
    {
        using var graph = new GraphLogprobs(ExecutionDevice.Cpu, rows.Length, pinned: false);
        using var buffer = new NativeBuffer(4L * logits.Length);
        logits.CopyTo(buffer.AsSpan<float>(logits.Length));
        var logprobs = new TokenLogprobs[rows.Length];
        graph.Run(OrtMemoryInfo.DefaultInstance, buffer.At(0), logits.Length / vocab, vocab, rows, tokens, logprobs);
        return logprobs;
    }
}

using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using VicunaBatch.Cli.Eval;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Local.Tests.Webhooks;
using VicunaBatch.Testing;

namespace VicunaBatch.Cli.Tests.Eval;

/// <summary>
/// Scheduled evaluations: a definition of kind "eval" run now by <c>eval run</c> (answers here, the judge a real
/// <c>serve</c>, its webhook signed with the definition's secret, a failed run resumed by the next), and on its schedule
/// by <c>serve --pipelines</c>; and what a bad definition is told.
/// </summary>
public sealed class EvalRunTests : IDisposable
{
    private const string ApiKey = "vb-test-key-evalrun-51e0";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(180);
    private readonly RunFolder _folder = new();
    private readonly string _secret = WebhookSigner.GenerateSecret();

    public void Dispose() => _folder.Dispose();

    private static string Tiny => Path.Combine(Checkout.Root, "models", "tiny");

    private string Out => Path.Combine(_folder.Root, "runs");

    /// <summary>The definition in <paramref name="folder"/> (default: the test's), its questions and output given relative to it.</summary>
    private string WriteDefinition(string judgeUrl, string webhookUrl, string? schedule = null, string? folder = null)
    {
        folder ??= _folder.Root;
        var vicuna = Path.Combine(Checkout.Shared, "data", "vicuna_bench_questions.jsonl");
        Assert.True(File.Exists(vicuna), $"{vicuna} is missing: these tests read the question sets from the shared data ($VICUNA_SHARED or ../shared)");
        _folder.WriteInput("questions.jsonl", File.ReadLines(vicuna).Take(2));
        var definition = new JsonObject
        {
            ["kind"] = "eval",
            ["name"] = "nightly",
            ["questions"] = Path.GetRelativePath(folder, Path.Combine(_folder.Root, "questions.jsonl")),
            ["out"] = Path.GetRelativePath(folder, Out),
            ["models"] = new JsonArray(
                new JsonObject { ["name"] = "cold", ["package"] = Tiny, ["temperature"] = 0, ["max_tokens"] = 6 },
                new JsonObject { ["name"] = "warm", ["package"] = Tiny, ["temperature"] = 1, ["max_tokens"] = 6 }),
            ["judge"] = new JsonObject
            {
                ["url"] = judgeUrl, ["model"] = "tiny", ["modes"] = new JsonArray("single", "pairwise-baseline"), ["baseline"] = "cold", ["max_tokens"] = 8,
            },
            ["webhook"] = new JsonObject { ["url"] = webhookUrl, ["secret"] = _secret },
        };
        if (schedule is not null) definition["schedule"] = schedule;
        var path = Path.Combine(folder, "nightly.json");
        File.WriteAllText(path, definition.ToJsonString());
        return path;
    }

    private Task<(int ExitCode, string Stdout, string Stderr)> CliAsync(params string[] args) =>
        CliProcess.RunAsync(_folder.Root, Timeout, new Dictionary<string, string> { ["VICUNABATCH_API_KEY"] = ApiKey }, args);

    /// <summary>The events the receiver got, each checked against the definition's secret.</summary>
    private List<JsonElement> SignedEvents(LoopbackReceiver receiver) => [.. receiver.Requests.Select(r =>
    {
        var body = Encoding.UTF8.GetString(r.Body);
        Assert.Equal(WebhookVerifyResult.Valid, WebhookSigner.Verify(_secret, new WebhookHeaders(r.Id!, r.Timestamp!, r.Signature!), body, DateTimeOffset.UtcNow));
        return JsonDocument.Parse(body).RootElement.Clone();
    })];

    [Fact]
    public async Task A_run_that_fails_is_announced_and_resumed_by_the_next_which_answers_judges_shows_and_announces_it()
    {
        await using var receiver = new LoopbackReceiver();
        // the judge's API is down: the answers are made, the judging fails, eval.run.failed says why
        var definition = WriteDefinition($"http://127.0.0.1:{LoopbackPorts.Free()}", receiver.Url);
        var failed = await CliAsync("eval", "run", definition);
        Assert.Equal(1, failed.ExitCode);
        Assert.Contains("cannot reach", failed.Stderr);
        var failure = Assert.Single(SignedEvents(receiver));
        Assert.Equal("eval.run.failed", failure.GetProperty("type").GetString());
        var runId = failure.GetProperty("data").GetProperty("run_id").GetString()!;
        Assert.StartsWith("ev-nightly-", runId);
        Assert.Contains("cannot reach", failure.GetProperty("data").GetProperty("error").GetString());
        Assert.True(File.Exists(Path.Combine(Out, runId, "model_answer", "warm.jsonl")));

        using var serve = await ServeProcess.StartAsync(_folder.Root, Path.Combine(_folder.Root, "data"), ApiKey);
        WriteDefinition(serve.Http.BaseAddress!.ToString(), receiver.Url);
        var run = await CliAsync("eval", "run", definition);

        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.StartsWith($"run {runId} (resumed): {Path.Combine(Out, runId)}", run.Stdout);
        Assert.Contains("  cold: 2 of 2 turns answered", run.Stdout);
        Assert.Contains("  webhook eval.run.completed: delivered (HTTP 200)", run.Stdout);
        Assert.Contains("it had already ended: nothing was run now", run.Stderr); // the answer jobs of the failed run, reused
        foreach (var file in new[] { "results.md", "results.svg", "model_judgment/tiny_single.jsonl", "model_judgment/tiny_pairwise-baseline.jsonl" })
            Assert.True(File.Exists(Path.Combine(Out, runId, file)), file);
        Assert.False(File.Exists(Path.Combine(Out, "current.json"))); // finished: the next run is a new one
        var completed = SignedEvents(receiver)[1];
        // each as a user's receiver checks it, with the Standard Webhooks library
        Assert.All(await StandardWebhooksLibrary.VerifyAsync(_secret, [.. receiver.Requests.Select(r =>
            new ReceivedWebhook(r.Id!, r.Timestamp!, r.Signature!, Encoding.UTF8.GetString(r.Body)))]), Assert.Null);
        Assert.Equal("eval.run.completed", completed.GetProperty("type").GetString());
        var judgments = completed.GetProperty("data").GetProperty("judgments").EnumerateArray().ToList();
        Assert.Equal(["single", "pairwise-baseline"], judgments.Select(j => j.GetProperty("mode").GetString()));
        Assert.Equal([4, 4], judgments.Select(j => j.GetProperty("num_judgments").GetInt32())); // 2 models × 2 questions; 1 pair × 2 questions × 2 orders
        var single = RunFolder.ReadJsonLines(Path.Combine(Out, runId, "model_judgment", "tiny_single.jsonl"));
        Assert.Equal(single.Count(s => s.GetProperty("score").GetDouble() == -1), judgments[0].GetProperty("num_unparsable").GetInt32());
    }

    [Fact]
    public async Task Serve_runs_an_evaluation_on_its_schedule_and_its_webhook_says_it_completed()
    {
        await using var receiver = new LoopbackReceiver();
        var port = LoopbackPorts.Free();
        var pipelines = Path.Combine(_folder.Root, "pipelines");
        Directory.CreateDirectory(pipelines);
        WriteDefinition($"http://127.0.0.1:{port}", receiver.Url, schedule: "*/2 * * * * *", folder: pipelines);
        // the run inside serve finds the key for its judge's batches in the environment, as eval run does
        using var serve = await ServeProcess.StartWithArgsAsync(_folder.Root, ApiKey, new Dictionary<string, string> { ["VICUNABATCH_API_KEY"] = ApiKey },
            "--api-key", ApiKey, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--data", Path.Combine(_folder.Root, "data"), "--pipelines", pipelines);

        for (var i = 0; i < 1200 && receiver.Requests.IsEmpty; i++) await Task.Delay(100);
        Assert.False(receiver.Requests.IsEmpty, serve.Logs);

        var completed = Assert.Single(SignedEvents(receiver).Take(1));
        Assert.True(completed.GetProperty("type").GetString() == "eval.run.completed", serve.Logs);
        var folder = completed.GetProperty("data").GetProperty("folder").GetString()!;
        Assert.True(File.Exists(Path.Combine(folder, "results.svg")));
        // the run delivers its webhook before the loop logs it
        var logged = $"evaluation nightly run {Path.GetFileName(folder)}: completed";
        for (var i = 0; i < 100 && !serve.Logs.Contains(logged, StringComparison.Ordinal); i++) await Task.Delay(100);
        Assert.Contains(logged, serve.Logs);
    }

    [Theory]
    [InlineData("""{"kind":"eval","name":"n","questions":"q","out":"o","models":[{"name":"a","package":"p","url":"http://x"}],"judge":{"url":"http://j","model":"m"}}""",
        "models[0]: needs exactly one of \"package\"")]
    [InlineData("""{"kind":"eval","name":"n","questions":"q","out":"o","models":[{"name":"a","package":"p"}],"judge":{"url":"http://j","model":"m","modes":["pairwise-all"]}}""",
        "judge.modes: pairwise modes need two models at least")]
    [InlineData("""{"kind":"eval","name":"n","questions":"q","out":"o","models":[{"name":"a","package":"p"},{"name":"b","package":"p"}],"judge":{"url":"http://j","model":"m","modes":["pairwise-baseline"]}}""",
        "judge.baseline: is required with pairwise-baseline")]
    [InlineData("""{"kind":"eval","name":"n","questions":"q","out":"o","models":[{"name":"a","package":"p","temperature":3}],"judge":{"url":"http://j","model":"m"}}""",
        "models[0].temperature: 3 must be a number from 0 to 2")]
    [InlineData("""{"kind":"eval","name":"n","questions":"q","out":"o","models":[{"name":"a","package":"p"}],"judge":{"url":"http://j","model":"m"},"schedule":"nightly"}""",
        "schedule: \"nightly\" has 1 fields")]
    [InlineData("""{"kind":"eval","name":"n","questions":"q","out":"o","models":[{"name":"a","package":"p"}],"judge":{"url":"http://j","model":"m"},"webhook":{"url":"http://w","secret":"whsec_***"}}""",
        "webhook.secret: must be \"whsec_\" followed by base64 key bytes")]
    [InlineData("""{"kind":"eval","name":"n","questions":"q","out":"o","models":[{"name":"a","package":"p"}],"judge":{"url":"http://j","model":"m"},"jduge":1}""",
        "jduge: unknown field")]
    public void A_bad_definition_is_refused_naming_the_field(string json, string expected)
    {
        Assert.True(EvalDefinition.IsEval(json));
        Assert.StartsWith(expected, Assert.Throws<PipelineDefinitionException>(() => EvalDefinition.Parse(json, _folder.Root)).Message);
    }

    [Fact]
    public void Newest_package_in_picks_the_package_folder_written_last()
    {
        var packages = Path.Combine(_folder.Root, "packages");
        foreach (var (name, age) in new[] { ("v1", 3), ("v3", 1), ("v2", 2) })
        {
            var folder = Directory.CreateDirectory(Path.Combine(packages, name));
            File.WriteAllText(Path.Combine(folder.FullName, "genai_config.json"), "{}");
            folder.LastWriteTimeUtc = DateTime.UtcNow.AddHours(-age);
        }
        Directory.CreateDirectory(Path.Combine(packages, "notes")); // newest, but no package

        Assert.Equal(Path.Combine(packages, "v3"), EvalRun.NewestPackage(packages, "candidate"));
    }
}

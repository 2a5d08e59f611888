using System.Text.Json;
using System.Text.RegularExpressions;
using VicunaBatch.Testing;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// run, bench and serve on several engines of one model, fed from its one queue: one per GPU with <c>--gpus</c>; here, with
/// no GPU, two CPU engines of the tiny model (the hidden <c>--engines 2</c>), through the program as users run it.
/// </summary>
public sealed partial class SeveralEnginesTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(180);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "vicunabatch-engines-" + Guid.NewGuid().ToString("N"));

    public SeveralEnginesTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>96 greedy completion lines of 2 to 9 tokens.</summary>
    private static IEnumerable<string> Lines => Enumerable.Range(0, 96).Select(i =>
        JsonSerializer.Serialize(new { custom_id = $"r{i}", prompt = $"The note number {i} says", max_tokens = 2 + i % 8 }));

    [Fact]
    public async Task Run_on_two_engines_feeds_both_from_the_queue_and_writes_what_one_engine_writes()
    {
        var input = Path.Combine(_dir, "in.jsonl");
        await File.WriteAllLinesAsync(input, Lines);

        var one = await CliProcess.RunAsync(_dir, Timeout, "run", input, "--out", Path.Combine(_dir, "one"), "--requests-per-shard", "8", "--threads", "1");
        var two = await CliProcess.RunAsync(_dir, Timeout, "run", input, "--out", Path.Combine(_dir, "two"), "--requests-per-shard", "8", "--threads", "1", "--engines", "2");

        Assert.True(one.ExitCode == 0, one.Stderr);
        Assert.True(two.ExitCode == 0, two.Stderr);
        Assert.DoesNotContain("engine 0:", one.Stdout);
        var shares = EngineShare().Matches(two.Stdout).ToDictionary(m => m.Groups["engine"].Value, m => int.Parse(m.Groups["requests"].Value));
        Assert.Equal(["engine 0", "engine 1"], shares.Keys.Order());
        Assert.All(shares.Values, requests => Assert.True(requests > 0, two.Stdout)); // both engines took shards of the one queue
        Assert.Equal(96, shares.Values.Sum());
        var texts = Texts(Path.Combine(_dir, "two", "output.jsonl"));
        Assert.Equal(96, texts.Count);
        Assert.Equal(Texts(Path.Combine(_dir, "one", "output.jsonl")), texts); // greedy: the same answer whichever engine ran it
        Assert.Empty((await CheckCommand.CheckAsync(input, Path.Combine(_dir, "two"), null)).Problems);
    }

    [Theory]
    [InlineData(new[] { "--gpus", "0" }, "vicuna-batch: --gpus chooses GPUs: it needs --device cuda (on the CPU the model runs on one engine)")]
    [InlineData(new[] { "--device", "cuda", "--engines", "2" },
        "vicuna-batch: --engines is for the CPU; with --device cuda the model runs on one engine a GPU: choose them with --gpus")]
    [InlineData(new[] { "--engines", "0" }, "vicuna-batch: --engines 0: must be at least 1")]
    public async Task Engine_choices_that_cannot_run_are_one_line_and_exit_2_before_anything_is_written(string[] options, string error)
    {
        var input = Path.Combine(_dir, "in.jsonl");
        await File.WriteAllLinesAsync(input, Lines.Take(2));

        foreach (var command in new[] { "run", "serve", "bench" })
        {
            string[] args = command switch
            {
                "run" => ["run", input, "--out", Path.Combine(_dir, "out"), .. options],
                "serve" => ["serve", "--port", "0", "--data", Path.Combine(_dir, "data"), "--api-key", "a-key-long-enough-1", .. options],
                _ => ["bench", "--workload", input, .. options],
            };
            var (exitCode, _, stderr) = await CliProcess.RunAsync(_dir, Timeout, args);
            Assert.Equal((2, error), (exitCode, stderr.Trim()));
        }
        Assert.False(Directory.Exists(Path.Combine(_dir, "out")));
    }

    [Fact]
    public async Task Gpus_that_are_not_numbers_are_refused_as_the_options_parse()
    {
        var (exitCode, _, stderr) = await CliProcess.RunAsync(_dir, Timeout, "run", "in.jsonl", "--gpus", "0,x");

        Assert.Equal(1, exitCode); // a parse error, as every option's
        Assert.StartsWith("--gpus takes GPU numbers separated by commas (0,1), not '0,x'", stderr);
    }

    [Fact]
    public async Task Bench_on_two_engines_splits_the_workload_and_prints_each_engine_and_the_total()
    {
        var workload = Path.Combine(_dir, "workload.jsonl");
        await File.WriteAllLinesAsync(workload, Lines.Take(12));

        var (exitCode, stdout, stderr) = await CliProcess.RunAsync(_dir, Timeout, "bench", "--workload", workload, "--engines", "2", "--threads", "1", "--json");

        Assert.True(exitCode == 0, stderr);
        var report = JsonDocument.Parse(stdout).RootElement;
        var engines = report.GetProperty("engines").EnumerateArray().ToList();
        Assert.Equal(["engine 0", "engine 1"], engines.Select(e => e.GetProperty("engine").GetString()));
        Assert.Equal([6, 6], engines.Select(e => e.GetProperty("requests").GetInt32()));
        // every request makes its max_tokens (EOS ignored): 12 lines of 2 + i % 8 tokens
        var expected = Enumerable.Range(0, 12).Sum(i => 2 + i % 8);
        Assert.Equal((2, 12, expected), (report.GetProperty("engines_count").GetInt32(), report.GetProperty("requests").GetInt32(), report.GetProperty("output_tokens").GetInt32()));
        Assert.Equal(expected, engines.Sum(e => e.GetProperty("output_tokens").GetInt32()));
        // dealt longest first, one each in turn: the two shares are within one request's tokens of each other
        Assert.InRange(Math.Abs(engines[0].GetProperty("output_tokens").GetInt32() - engines[1].GetProperty("output_tokens").GetInt32()), 0, 9);

        var table = await CliProcess.RunAsync(_dir, Timeout, "bench", "--workload", workload, "--engines", "2", "--threads", "1");
        Assert.True(table.ExitCode == 0, table.Stderr);
        Assert.Contains("== engine 0", table.Stdout);
        Assert.Contains("== engine 1", table.Stdout);
        Assert.Contains("== all 2 engines", table.Stdout);
        Assert.Matches(@$"== all 2 engines\nrequests +12 \(0 errors\)\noutput tokens +{expected}\n", table.Stdout.ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task Serve_on_two_engines_completes_a_batch_with_every_line_answered()
    {
        const string apiKey = "several-engines-key-1";
        using var serve = await ServeProcess.StartAsync(_dir, Path.Combine(_dir, "data"), apiKey, extraArgs: ["--engines", "2", "--threads", "1", "--requests-per-shard", "8"]);
        var lines = Lines.Select(l => JsonSerializer.Serialize(new
        {
            custom_id = JsonDocument.Parse(l).RootElement.GetProperty("custom_id").GetString(), method = "POST", url = "/v1/completions",
            body = new { prompt = JsonDocument.Parse(l).RootElement.GetProperty("prompt").GetString(), max_tokens = 4 },
        })).ToList();
        var fileId = await serve.UploadAsync(lines);
        var batch = await serve.CreateBatchAsync(new { input_file_id = fileId, endpoint = "/v1/completions", completion_window = "24h" });

        var ended = await serve.WaitForBatchEndAsync(batch.GetProperty("id").GetString()!, Timeout);

        Assert.Equal("completed", ended.GetProperty("status").GetString());
        Assert.Equal(96, ended.GetProperty("request_counts").GetProperty("completed").GetInt32());
        Assert.Contains("model tiny runs on 2 engines: engine 0, engine 1", serve.Logs);
    }

    private static SortedDictionary<string, string> Texts(string outputPath)
    {
        var texts = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(outputPath))
        {
            var root = JsonDocument.Parse(line).RootElement;
            texts[root.GetProperty("custom_id").GetString()!] =
                root.GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("text").GetString()!;
        }
        return texts;
    }

    [GeneratedRegex(@"(?<engine>engine \d): (?<requests>\d+) requests, \d+ output tokens")]
    private static partial Regex EngineShare();
}

using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Execution;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// The bad-input corpus (tests/data/bad-inputs, see its README) through the bulk job on the embedded tiny model: each
/// file gives a completed job — bad lines as error lines with their line numbers, good lines answered — and the
/// checker finds the results whole. Never a crash or a hang. A file with no request, or with no good one, exits 1.
/// </summary>
public sealed class BadInputTests : IDisposable
{
    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Theory]
    [InlineData("empty.jsonl")]
    [InlineData("blank.jsonl")]
    public async Task A_file_with_no_request_fails_its_job_with_empty_input(string name)
    {
        var input = Path.Combine(Checkout.Root, "tests", "data", "bad-inputs", name);
        var result = await CliProcess.RunAsync(_folder.Root, TimeSpan.FromSeconds(60), "run", input, "--out", _folder.Out);

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith($"failed: 0 succeeded, 0 failed of 0 in ", result.Stdout);
        Assert.Contains("  empty_input: the input file has no requests", result.Stdout);
        var job = JsonDocument.Parse(File.ReadAllText(_folder.JobPath)).RootElement;
        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Empty((await CheckCommand.CheckAsync(input, _folder.Out, null)).Problems);
    }

    [Fact]
    public async Task A_file_of_broken_lines_only_completes_its_job_but_exits_1()
    {
        var input = _folder.WriteInput("broken.jsonl", ["{\"prompt\": ", "not json", "{\"custom_id\": \"x\"}"]);
        var result = await CliProcess.RunAsync(_folder.Root, TimeSpan.FromSeconds(60), "run", input, "--out", _folder.Out);

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("completed: 0 succeeded, 3 failed of 3 in ", result.Stdout);
        Assert.EndsWith("vicuna-batch: no request succeeded; errors.jsonl says why for each of the 3", result.Stderr.Trim());
        Assert.Equal([1, 2, 3], RunFolder.ReadJsonLines(_folder.ErrorsPath).Select(e => e.GetProperty("error").GetProperty("line").GetInt32()));
        Assert.Empty((await CheckCommand.CheckAsync(input, _folder.Out, null)).Problems);
    }

    [Theory]
    [InlineData("bom-crlf.jsonl", 2, 0)]
    [InlineData("invalid-utf8.jsonl", 1, 1)]
    [InlineData("wrong-types.jsonl", 11, 45)]
    [InlineData("nested.jsonl", 1, 1)]
    [InlineData("traversal.jsonl", 2, 1)]
    [InlineData("duplicates.jsonl", 2, 2)]
    public async Task Corpus_file_gives_a_completed_job_with_whole_results(string name, int numValid, int numRejected)
    {
        var input = Path.Combine(Checkout.Root, "tests", "data", "bad-inputs", name);
        var summary = await RunAsync(input);

        Assert.Equal(JobStatus.Completed, summary.Job.Status);
        var check = await CheckCommand.CheckAsync(input, _folder.Out, null);
        Assert.Empty(check.Problems);
        Assert.Equal((numValid, numRejected), (check.NumValidRequests, check.NumRejectedLines));
    }

    [Fact]
    public async Task Invalid_utf8_is_an_invalid_encoding_error_with_its_line_number()
    {
        await RunAsync(Path.Combine(Checkout.Root, "tests", "data", "bad-inputs", "invalid-utf8.jsonl"));
        var error = Assert.Single(RunFolder.ReadJsonLines(_folder.ErrorsPath));
        Assert.Equal(("invalid_encoding", 2), (error.GetProperty("error").GetProperty("code").GetString(), error.GetProperty("error").GetProperty("line").GetInt32()));
    }

    /// <summary>A 10 MB line is over the 1 MiB line limit: read past, never parsed (its custom_id comes from its head);
    /// a prompt of 39 KB fits the line limit but not the context: refused by a lower bound, before it is tokenized whole.</summary>
    [Fact]
    public async Task A_10_MB_line_and_a_prompt_beyond_the_context_fail_alone_while_the_rest_run()
    {
        var input = _folder.WriteInput("big.jsonl",
        [
            JsonSerializer.Serialize(new { custom_id = "ten-mb", prompt = string.Concat(Enumerable.Repeat("word ", 2_000_000)), max_tokens = 2 }),
            JsonSerializer.Serialize(new { custom_id = "long", prompt = string.Concat(Enumerable.Repeat("tell me more ", 3_000)), max_tokens = 2 }),
            JsonSerializer.Serialize(new { custom_id = "fine", prompt = "hello", max_tokens = 2 }),
        ]);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var summary = await RunAsync(input, timeout.Token);

        Assert.Equal(new RequestCounts(3, 1, 2), summary.Job.RequestCounts);
        var errors = RunFolder.ReadJsonLines(_folder.ErrorsPath).ToDictionary(e => e.GetProperty("custom_id").GetString()!, e => e.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("line_too_long", errors["ten-mb"]);
        Assert.Equal("context_length_exceeded", errors["long"]);
        Assert.Empty((await CheckCommand.CheckAsync(input, _folder.Out, null)).Problems);
    }

    [Fact]
    public async Task Max_line_bytes_sets_the_line_limit_and_a_longer_line_is_an_error_line_naming_it()
    {
        var input = _folder.WriteInput("lines.jsonl",
        [
            JsonSerializer.Serialize(new { custom_id = "short", prompt = "hello", max_tokens = 2 }),
            JsonSerializer.Serialize(new { prompt = new string('a', 5000), max_tokens = 2, custom_id = "over" }), // its id is past the 4 KiB head
        ]);

        var result = await CliProcess.RunAsync(_folder.Root, TimeSpan.FromSeconds(60), "run", input, "--out", _folder.Out, "--max-line-bytes", "2048");

        Assert.True(result.ExitCode == 0, result.Stderr);
        var error = Assert.Single(RunFolder.ReadJsonLines(_folder.ErrorsPath)).GetProperty("error");
        Assert.Equal(("line_too_long", 2, "the line is 5048 bytes, over the limit of 2048 (Input:MaxLineBytes)", "line-2"),
            (error.GetProperty("code").GetString(), error.GetProperty("line").GetInt32(), error.GetProperty("message").GetString(),
                RunFolder.ReadJsonLines(_folder.ErrorsPath).Single().GetProperty("custom_id").GetString()));
        Assert.Single(RunFolder.ReadJsonLines(_folder.OutputPath));
        var check = await CliProcess.RunAsync(_folder.Root, TimeSpan.FromSeconds(60), "check", input, _folder.Out, "--max-line-bytes", "2048");
        Assert.True(check.ExitCode == 0, check.Stdout);
        Assert.StartsWith("whole: 1 valid requests and 1 rejected lines", check.Stdout);
        // with the default limit the line is a valid request whose id ("over") the results never name
        Assert.Equal(1, (await CliProcess.RunAsync(_folder.Root, TimeSpan.FromSeconds(60), "check", input, _folder.Out)).ExitCode);
    }

    private Task<LocalRunSummary> RunAsync(string input, CancellationToken cancellationToken = default) =>
        new LocalJobRun(new LocalRunSettings(input, ModelChoice.Default, _folder.Out, new RequestDefaults { MaxTokens = 2 },
            new EngineOptions { NumThreads = 1 }, Workers: 2, Input: new InputOptions()), TimeProvider.System)
            .RunAsync(cancellationToken: cancellationToken);

}

using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Execution;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Local;
using VicunaBatch.Testing;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// <c>vicuna-batch run</c> on the embedded tiny model: in process through <see cref="LocalJobRun"/>, and as the compiled
/// program in a child process where exit codes, kills and concurrent runs matter. One class, so its runs go one at a time.
/// </summary>
public sealed class RunCommandTests : IDisposable
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(60);

    /// <summary>The broken lines of examples/prompts.jsonl (examples/README.md): line → (custom_id, code).</summary>
    private static readonly Dictionary<int, (string CustomId, string Code)> BrokenExampleLines = new()
    {
        [9] = ("line-9", "invalid_json"),
        [23] = ("broken-no-prompt", "missing_prompt"),
        [38] = ("broken-negative-max-tokens", "invalid_parameter"),
        [52] = ("simple-chat-03", "duplicate_custom_id"),
    };

    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task RunAsync_examplePrompts_writesEveryValidLineOnceAndEveryBrokenLineAsAnError()
    {
        var input = Path.Combine(Checkout.Root, "examples", "prompts.jsonl");
        var expectedIds = ExpectedValidIds(input);
        Assert.Equal(56, expectedIds.Count);

        var summary = await new LocalJobRun(Settings(input), TimeProvider.System).RunAsync();

        Assert.Equal(JobStatus.Completed, summary.Job.Status);
        Assert.Equal(_folder.Out, summary.OutputDirectory);
        var outputs = RunFolder.ReadJsonLines(_folder.OutputPath);
        var errors = RunFolder.ReadJsonLines(_folder.ErrorsPath);
        Assert.Equal(expectedIds.Order(StringComparer.Ordinal), outputs.Select(CustomId).Order(StringComparer.Ordinal));
        Assert.All(outputs, o => Assert.Equal(200, o.GetProperty("response").GetProperty("status_code").GetInt32()));
        Assert.Equal(
            BrokenExampleLines.OrderBy(e => e.Key).Select(e => (e.Key, e.Value.CustomId, e.Value.Code)),
            errors.Select(e => (
                ErrorLines.ErrorOf(e).GetProperty("line").GetInt32(),
                CustomId(e),
                ErrorLines.ErrorOf(e).GetProperty("code").GetString()!)).OrderBy(e => e.Item1));

        var job = JsonDocument.Parse(File.ReadAllText(_folder.JobPath)).RootElement;
        Assert.Equal("completed", job.GetProperty("status").GetString());
        Assert.Equal(summary.Job.Id, job.GetProperty("id").GetString());
        var counts = job.GetProperty("request_counts");
        Assert.Equal((60, 56, 4), (counts.GetProperty("total").GetInt32(), counts.GetProperty("completed").GetInt32(), counts.GetProperty("failed").GetInt32()));
        Assert.Equal(outputs.Count + errors.Count, counts.GetProperty("total").GetInt32());
        long completionTokens = outputs.Sum(o => o.GetProperty("response").GetProperty("body").GetProperty("usage").GetProperty("completion_tokens").GetInt64());
        Assert.Equal(completionTokens, job.GetProperty("usage").GetProperty("output_tokens").GetInt64());
        Assert.Equal(completionTokens, summary.Job.Usage.OutputTokens);
        var check = await CheckCommand.CheckAsync(input, _folder.Out, null);
        Assert.Empty(check.Problems);
        Assert.Equal((56, 4), (check.NumValidRequests, check.NumRejectedLines));
    }

    [Fact]
    public async Task RunAsync_textFileOf30Prompts_completesWithLineNumberIds()
    {
        var input = _folder.WriteInput("prompts.txt", Enumerable.Range(1, 30).Select(n => $"Write a short note number {n}."));

        var summary = await new LocalJobRun(Settings(input, maxTokens: 8), TimeProvider.System).RunAsync();

        Assert.Equal(JobStatus.Completed, summary.Job.Status);
        Assert.Equal(new RequestCounts(30, 30, 0), summary.Job.RequestCounts);
        Assert.Equal(
            Enumerable.Range(1, 30).Select(n => $"line-{n}").Order(StringComparer.Ordinal),
            RunFolder.ReadJsonLines(_folder.OutputPath).Select(CustomId).Order(StringComparer.Ordinal));
        Assert.Empty(File.ReadAllText(_folder.ErrorsPath));
    }

    [Theory]
    [InlineData(5)] // killed inside the first shards
    [InlineData(150)] // killed after several shards were acknowledged
    public async Task Run_killedMidwayThenRerun_finishesWithEveryCustomIdExactlyOnce(int numCheckpointedAtKill)
    {
        var (input, expectedIds) = WriteLongInput(400);
        string[] args = ["run", input, "--out", _folder.Out, "--requests-per-shard", "20", "--workers", "2", "--model", LongRunningModelArg];

        using (var first = CliProcess.Start(_folder.Root, args))
        {
            await WaitForCheckpointsAsync(first, minLines: numCheckpointedAtKill);
            first.Kill();
        }
        Assert.False(File.Exists(_folder.OutputPath), "the first run finished before it was killed; the input is too short");
        int numCheckpointedBefore = _folder.ReadCheckpointedIds().Count;
        Assert.InRange(numCheckpointedBefore, numCheckpointedAtKill, expectedIds.Count - 1);

        var second = await CliProcess.RunAsync(_folder.Root, RunTimeout, args);

        Assert.True(second.ExitCode == 0, $"exit {second.ExitCode}; stderr:\n{second.Stderr}");
        Assert.StartsWith("completed: 400 succeeded, 0 failed of 400", second.Stdout);
        // the summary counts what this run did, not the job's total over a time that saw only the rest
        var resumed = Regex.Match(second.Stdout, @"; resumed: (\d+) were done before, this run did (\d+) in [0-9.]+ s \((\d+) output tokens, ");
        Assert.True(resumed.Success, second.Stdout);
        Assert.Equal(numCheckpointedBefore, int.Parse(resumed.Groups[1].Value));
        Assert.Equal(400 - numCheckpointedBefore, int.Parse(resumed.Groups[2].Value));
        var ids = RunFolder.ReadJsonLines(_folder.OutputPath).Concat(RunFolder.ReadJsonLines(_folder.ErrorsPath)).Select(CustomId);
        Assert.Equal(expectedIds.Order(StringComparer.Ordinal), ids.Order(StringComparer.Ordinal));
        // nothing checkpointed by the killed run was generated again
        var checkpointed = _folder.ReadCheckpointedIds();
        Assert.Equal(expectedIds.Count, checkpointed.Count);
        Assert.Equal(expectedIds.Count, checkpointed.Distinct().Count());
        // the checker's verdict, through the CLI as a user runs it
        var check = await CliProcess.RunAsync(_folder.Root, RunTimeout, "check", input, _folder.Out);
        Assert.True(check.ExitCode == 0, check.Stdout + check.Stderr);
        Assert.StartsWith("whole: 400 valid requests and 0 rejected lines; 400 in output.jsonl, 0 in errors.jsonl", check.Stdout);

        var outputBefore = File.ReadAllBytes(_folder.OutputPath);
        var jobBefore = File.ReadAllBytes(_folder.JobPath);
        var third = await CliProcess.RunAsync(_folder.Root, RunTimeout, args);

        Assert.True(third.ExitCode == 0, $"exit {third.ExitCode}; stderr:\n{third.Stderr}");
        Assert.StartsWith("completed: 400 succeeded, 0 failed of 400 (", third.Stdout);
        Assert.Contains("output tokens); it had already ended: nothing was run now", third.Stdout);
        Assert.Equal(outputBefore, File.ReadAllBytes(_folder.OutputPath));
        Assert.Equal(jobBefore, File.ReadAllBytes(_folder.JobPath));
        Assert.Equal(expectedIds.Count, _folder.ReadCheckpointedIds().Count);
    }

    [Fact]
    public async Task Run_sameJobAlreadyRunning_exitsWith2AndSaysSo()
    {
        var (input, _) = WriteLongInput(1000); // killed when the test ends: longer only widens the window
        string[] args = ["run", input, "--out", _folder.Out, "--requests-per-shard", "20", "--workers", "2", "--model", LongRunningModelArg];
        using var first = CliProcess.Start(_folder.Root, args);
        await WaitForCheckpointsAsync(first, minLines: 1);

        var second = await CliProcess.RunAsync(_folder.Root, RunTimeout, args);

        Assert.False(first.HasExited, "the first run ended before the second started; the input is too short");
        Assert.Equal(2, second.ExitCode);
        Assert.Contains(
            $"is already being run by another process (lock: {Path.Combine(_folder.Out, ".state", "run.lock")})",
            second.Stderr);
    }

    [Fact]
    public async Task Run_aFolderAsTheInput_exitsWith2AndSaysItIsAFolder()
    {
        var result = await CliProcess.RunAsync(_folder.Root, RunTimeout, "run", _folder.Root, "--out", _folder.Out);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"vicuna-batch: {_folder.Root} is a folder; give a prompt file (.jsonl, or .txt with one prompt a line)", result.Stderr.Trim());
        Assert.False(Directory.Exists(_folder.Out));
    }

    [Fact]
    public async Task Run_missingInputFile_exitsWith2AndNamesTheFile()
    {
        var missing = Path.Combine(_folder.Root, "no-such-prompts.jsonl");

        var result = await CliProcess.RunAsync(_folder.Root, RunTimeout, "run", missing, "--out", _folder.Out);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"vicuna-batch: input file not found: {missing}" + Environment.NewLine, result.Stderr);
        Assert.Equal("", result.Stdout);
    }

    [Fact]
    public async Task Run_modelFolderWithoutGenaiConfig_exitsWith2AndNamesGenaiConfig()
    {
        var model = Directory.CreateDirectory(Path.Combine(_folder.Root, "empty-model")).FullName;
        var input = _folder.WriteInput("prompts.txt", ["Hello"]);

        var result = await CliProcess.RunAsync(_folder.Root, RunTimeout, "run", input, "--out", _folder.Out, "--model", model);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"vicuna-batch: {model} is not a model package: genai_config.json is missing", result.Stderr);
    }

    [Theory]
    [InlineData(new[] { "--max-tokens", "-5" }, "vicuna-batch: --max-tokens -5: must be at least 1")]
    [InlineData(new[] { "--temperature", "-1" }, "vicuna-batch: --temperature -1: must be in [0, 2]")]
    [InlineData(new[] { "--workers", "0" }, "vicuna-batch: --workers 0: must be at least 1")]
    [InlineData(new[] { "--requests-per-shard", "0" }, "vicuna-batch: --requests-per-shard 0: must be at least 1")]
    [InlineData(new[] { "--max-line-bytes", "100" }, "vicuna-batch: --max-line-bytes 100: must be at least 1024")]
    [InlineData(new[] { "--max-batch-size", "0" }, "vicuna-batch: --max-batch-size 0: 0 (as many KV slots as fit) needs the CUDA device")]
    public async Task Run_optionOutOfRange_exitsWith2NamingTheFlagBeforeMakingAnyJob(string[] options, string error)
    {
        var input = _folder.WriteInput("prompts.txt", ["Hello"]);

        var result = await CliProcess.RunAsync(_folder.Root, RunTimeout, ["run", input, "--out", _folder.Out, .. options]);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal(error, result.Stderr.Trim()); // no "job ..." line: there is none
        Assert.False(Directory.Exists(_folder.Out), "a run refused for its options left a job folder");
    }

    [Fact]
    public async Task Run_outUsedBeforeByAnEndedJob_replacesItsResultsAndSaysSo()
    {
        var first = _folder.WriteInput("first.txt", ["Hello", "World"]);
        var second = _folder.WriteInput("second.txt", ["One", "Two", "Three"]);
        Assert.Equal(0, (await CliProcess.RunAsync(_folder.Root, RunTimeout, "run", first, "--out", _folder.Out, "--max-tokens", "2")).ExitCode);
        var firstId = JsonDocument.Parse(File.ReadAllText(_folder.JobPath)).RootElement.GetProperty("id").GetString();

        var result = await CliProcess.RunAsync(_folder.Root, RunTimeout, "run", second, "--out", _folder.Out, "--max-tokens", "2");

        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Contains($"{_folder.Out} has job {firstId}'s results: this job's replace them (its state stays in .state/)", result.Stderr);
        Assert.Equal(["line-1", "line-2", "line-3"], RunFolder.ReadJsonLines(_folder.OutputPath).Select(l => l.GetProperty("custom_id").GetString()).Order());
        Assert.NotEqual(firstId, JsonDocument.Parse(File.ReadAllText(_folder.JobPath)).RootElement.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Run_modelGivenAName_namesItInEveryOutputAndTheJob()
    {
        var input = _folder.WriteInput("named.jsonl", [ChatLine("a", "house-model"), ChatLine("b", null)]);

        var result = await CliProcess.RunAsync(_folder.Root, RunTimeout, "run", input, "--out", _folder.Out, "--max-tokens", "2",
            "--model", $"house-model={Path.Combine(Checkout.Root, "models", "tiny")}");

        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal(["house-model", "house-model"], RunFolder.ReadJsonLines(_folder.OutputPath)
            .Select(l => l.GetProperty("response").GetProperty("body").GetProperty("model").GetString()));
        Assert.Equal("house-model", JsonDocument.Parse(File.ReadAllText(_folder.JobPath)).RootElement.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Run_linesNamingAModelNotServed_failTheJobWithModelNotFound()
    {
        var input = _folder.WriteInput("other.jsonl", [ChatLine("a", null), ChatLine("b", "gpt-4o-mini")]);

        var result = await CliProcess.RunAsync(_folder.Root, RunTimeout, "run", input, "--out", _folder.Out, "--max-tokens", "2");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("model_not_found: the model 'gpt-4o-mini' is not served here (served: tiny)", result.Stdout);
        var job = JsonDocument.Parse(File.ReadAllText(_folder.JobPath)).RootElement;
        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Equal(2, job.GetProperty("errors").GetProperty("data")[0].GetProperty("line").GetInt32());
        Assert.Empty(RunFolder.ReadJsonLines(_folder.OutputPath));
    }

    private static string ChatLine(string customId, string? model) => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["custom_id"] = customId, ["method"] = "POST", ["url"] = "/v1/chat/completions",
        ["body"] = model is null
            ? new Dictionary<string, object> { ["messages"] = new[] { new { role = "user", content = "hi" } } }
            : new Dictionary<string, object> { ["model"] = model, ["messages"] = new[] { new { role = "user", content = "hi" } } },
    });

    [Fact]
    public async Task Run_outHoldingAnUnfinishedJob_isRefusedBeforeThisJobIsSubmitted()
    {
        // the state an interrupted run of another file leaves: its job in progress, its shard still queued
        var other = _folder.WriteInput("other.txt", ["Hello", "World"]);
        var stateDir = Path.Combine(_folder.Out, ".state");
        await using var parts = OneMachine.Build(stateDir, new InputOptions(), [ModelChoice.Default.Name], TimeProvider.System);
        await using (var input = File.OpenRead(other))
        {
            await parts.GetRequiredService<IBlobStore>().PutAsync("inputs/batch_other.txt", input, BlobCondition.IfNotExists);
        }
        var unfinished = await parts.GetRequiredService<JobSubmitter>().SubmitAsync(new JobSubmission("inputs/batch_other.txt") { JobId = "batch_other" });
        Assert.Equal(JobStatus.InProgress, unfinished.Status);
        var input2 = _folder.WriteInput("mine.txt", ["One"]);

        var result = await CliProcess.RunAsync(_folder.Root, RunTimeout, "run", input2, "--out", _folder.Out);

        Assert.Equal(2, result.ExitCode);
        Assert.EndsWith(
            $"vicuna-batch: {_folder.Out} holds job batch_other, which has not ended: run its command again to finish it, or give this one another --out",
            result.Stderr.Trim());
        Assert.Equal(["batch_other.txt"], Directory.GetFiles(Path.Combine(stateDir, "blobs", "inputs")).Select(Path.GetFileName));
        Assert.Equal(1, await ((SqliteWorkQueue)parts.GetRequiredService<LocalWorkQueues>().Of(ModelChoice.Default.Name)).CountAsync()); // the other job's shard, untouched
    }

    [Fact]
    public async Task Run_outIsAFile_exitsWith2BeforeWritingAnything()
    {
        var input = _folder.WriteInput("prompts.txt", ["Hello"]);
        var file = Path.Combine(_folder.Root, "not-a-folder");
        File.WriteAllText(file, "mine");

        var result = await CliProcess.RunAsync(_folder.Root, RunTimeout, "run", input, "--out", file);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"vicuna-batch: --out {file} is a file; give a folder (it is made if missing)" + Environment.NewLine, result.Stderr);
        Assert.Equal("mine", File.ReadAllText(file));
    }

    [Fact]
    public async Task Run_modelThatOnnxRuntimeCannotLoad_exitsWith2AndSaysWhy()
    {
        // the package reads (config, tokenizer), the graph does not: the load fails on its own thread, mid-submit
        var model = Directory.CreateDirectory(Path.Combine(_folder.Root, "broken-model")).FullName;
        foreach (var file in new[] { "genai_config.json", "tokenizer.model" })
        {
            File.Copy(Path.Combine(ModelOptions.DefaultModelPath, file), Path.Combine(model, file));
        }
        File.WriteAllText(Path.Combine(model, "model.onnx"), "not a graph");
        var input = _folder.WriteInput("prompts.txt", ["Hello"]);

        var result = await CliProcess.RunAsync(_folder.Root, RunTimeout, "run", input, "--out", _folder.Out, "--model", model);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"vicuna-batch: ONNX Runtime could not load {Path.Combine(model, "model.onnx")}", result.Stderr);
        Assert.DoesNotContain("Unhandled exception", result.Stderr);
    }

    private LocalRunSettings Settings(string input, int maxTokens = 256) => new(
        input,
        ModelChoice.Default,
        _folder.Out,
        new RequestDefaults { MaxTokens = maxTokens },
        new EngineOptions(),
        Workers: 2,
        Input: new InputOptions());

    /// <summary>With 400 lines, about 4 s of work on the tiny model: long enough to kill midway, short enough for a test.</summary>
    /// <summary>The long inputs run on <see cref="LongRunningModel"/> under the name "tiny": each request runs to its
    /// max_tokens, so a run of them is still going when it is killed.</summary>
    private static string LongRunningModelArg => $"tiny={LongRunningModel.Path}";

    private (string Path, List<string> Ids) WriteLongInput(int numLines)
    {
        var ids = Enumerable.Range(1, numLines).Select(n => $"k-{n:D4}").ToList();
        var path = _folder.WriteInput("long.jsonl", ids.Select((id, i) =>
            JsonSerializer.Serialize(new { custom_id = id, prompt = $"Tell me story number {i + 1}.", max_tokens = 200 })));
        return (path, ids);
    }

    private async Task WaitForCheckpointsAsync(CliProcess run, int minLines)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (_folder.ReadCheckpointedIds().Count < minLines)
        {
            Assert.False(run.HasExited, $"the run ended before {minLines} requests were checkpointed; stderr:\n{run.Stderr}");
            Assert.True(DateTime.UtcNow < deadline, $"fewer than {minLines} requests checkpointed within 20 s");
            await Task.Delay(20);
        }
    }

    /// <summary>What the run should produce, read independently of the product's parser: custom_id, or line-N without one.</summary>
    private static List<string> ExpectedValidIds(string input)
    {
        var ids = new List<string>();
        var lines = File.ReadAllLines(input);
        Assert.Equal(61, lines.Length);
        for (int n = 1; n <= lines.Length; n++)
        {
            if (string.IsNullOrWhiteSpace(lines[n - 1]) || BrokenExampleLines.ContainsKey(n)) continue;
            var line = JsonDocument.Parse(lines[n - 1]).RootElement;
            ids.Add(line.TryGetProperty("custom_id", out var id) ? id.GetString()! : $"line-{n}");
        }
        return ids;
    }

    private static string CustomId(JsonElement line) => line.GetProperty("custom_id").GetString()!;

}

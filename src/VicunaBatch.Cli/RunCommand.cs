using System.CommandLine;
using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Execution;

namespace VicunaBatch.Cli;

/// <summary>
/// <c>vicuna-batch run FILE</c>: validates, shards, queues and drains a bulk prompt file through one engine, with a
/// live progress bar; writes output.jsonl, errors.jsonl and job.json. Interrupted? Run the same command again.
/// </summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var defaults = new RequestDefaults();
        var modelOptions = new ModelOptions();
        var file = new Argument<FileInfo>("FILE") { Description = "Prompts: JSONL (OpenAI Batch lines or {\"prompt\" | \"messages\", ...}) or .txt (one prompt per line)." };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Where results go. Default: ./results/<job id>/" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens per request when a line gives no max_tokens.", DefaultValueFactory = _ => defaults.MaxTokens };
        var temperature = new Option<float>("--temperature") { Description = "Temperature when a line gives none (0 = greedy).", DefaultValueFactory = _ => defaults.Temperature };
        var workers = new Option<int>("--workers") { Description = "Shards in flight at once on each engine (one per GPU); more while fewer than 8 × its KV slots of requests are in flight (a GPU's many slots), up to 32.", DefaultValueFactory = _ => 4 };
        var perShard = new Option<int>("--requests-per-shard") { Description = "Requests per queue message.", DefaultValueFactory = _ => new InputOptions().RequestsPerShard };
        var maxLineBytes = InputFlags.MaxLineBytes();
        var command = new Command("run", "Run a bulk prompt file to completion on this machine.")
        {
            file, output, maxTokens, temperature, workers, perShard, maxLineBytes,
        };
        modelOptions.AddTo(command, served: true, engines: true);
        command.SetAction(async (ParseResult r, CancellationToken cancellationToken) =>
        {
            var input = r.GetValue(file)!;
            if (Directory.Exists(input.FullName))
            {
                throw new UsageException($"{input.FullName} is a folder; give a prompt file (.jsonl, or .txt with one prompt a line)");
            }
            if (!input.Exists)
            {
                throw new UsageException($"input file not found: {input.FullName}");
            }
            if (r.GetValue(output) is { } outDir && File.Exists(outDir.FullName))
            {
                throw new UsageException($"--out {outDir.FullName} is a file; give a folder (it is made if missing)");
            }
            var settings = new LocalRunSettings(
                input.FullName,
                modelOptions.OneServedModel(r, "run"),
                r.GetValue(output)?.FullName,
                new RequestDefaults { MaxTokens = r.GetValue(maxTokens), Temperature = r.GetValue(temperature) },
                modelOptions.EngineOptions(r),
                r.GetValue(workers),
                new InputOptions { RequestsPerShard = r.GetValue(perShard), MaxLineBytes = r.GetValue(maxLineBytes) })
            {
                Engines = modelOptions.EachEngine(r),
            };
            settings.Validate();
            return await ExecuteAsync(settings, cancellationToken);
        });
        return command;
    }

    private static async Task<int> ExecuteAsync(LocalRunSettings settings, CancellationToken cancellationToken)
    {
        ProgressLine? bar = null;
        var run = new LocalJobRun(settings, TimeProvider.System);
        var jobId = LocalJobRun.JobIdFor(settings);
        Console.Error.WriteLine($"job {jobId}: {Path.GetFileName(settings.InputPath)} on model {settings.Model.Name}");
        if (LocalJobRun.OtherJobInOutput(settings, jobId) is { } other)
        {
            Console.Error.WriteLine($"{LocalJobRun.OutputDirectoryFor(settings, jobId)} has job {other}'s results: this job's replace them (its state stays in .state/)");
        }
        LocalRunSummary summary;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // before the bar: what the run waits for (a large model takes minutes to load on a CPU), once it takes a while
        var waiting = new WaitingLine();
        var stage = RunStage.Submitting;
        using var waitTicker = new Timer(_ => waiting.Report(WaitingText(stage)), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
        try
        {
            summary = await run.RunAsync(
                (done, failed, total, tokens) =>
                {
                    bar ??= new ProgressLine(total);
                    bar.Report(done + failed, tokens, failed);
                },
                onStage: s =>
                {
                    stage = s;
                    if (s == RunStage.Running) waiting.Done();
                },
                onModelLoaded: models =>
                {
                    foreach (var note in Inference.LoadedModel.SlotsNotes(models)) waiting.Note(note);
                },
                cancellationToken: cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            waiting.Done();
            bar?.Clear();
            Console.Error.WriteLine("interrupted: finished requests are checkpointed; run the same command again to resume.");
            return 130;
        }
        finally
        {
            waiting.Done();
        }
        bar?.Clear();
        var job = summary.Job;
        Console.Out.WriteLine(SummaryLine(job, summary.Drain, summary.EndedBefore, clock.Elapsed));
        if (EnginesLine(summary.Drain, clock.Elapsed) is { } engines) Console.Out.WriteLine(engines);
        foreach (var error in job.Errors?.Data ?? [])
        {
            Console.Out.WriteLine($"  {error.Code}: {error.Message}");
        }
        Console.Out.WriteLine($"  {Path.Combine(summary.OutputDirectory, "output.jsonl")}");
        Console.Out.WriteLine($"  {Path.Combine(summary.OutputDirectory, "errors.jsonl")}");
        Console.Out.WriteLine($"  {Path.Combine(summary.OutputDirectory, "job.json")}");
        if (NothingSucceeded(job))
        {
            Console.Error.WriteLine($"vicuna-batch: no request succeeded; errors.jsonl says why for each of the {job.RequestCounts.Failed}");
        }
        return ExitCodeOf(job);
    }

    private static string WaitingText(RunStage stage) => stage == RunStage.LoadingModel
        ? "loading the model"
        : "validating and queueing the input, loading the model";

    /// <summary>0 for a job that completed with at least one answer, 1 for one that failed, expired, was cancelled or
    /// answered nothing (<c>run</c>, and <c>submit --wait</c> / <c>results</c> for a batch of the API).</summary>
    internal static int ExitCodeOf(BatchJob job) => job.Status == JobStatus.Completed && !NothingSucceeded(job) ? 0 : 1;

    /// <summary>
    /// A completed job whose every request failed (a file of broken lines, the wrong file): the job ran to its end,
    /// but a script that runs it should not take that for success. Some requests failing is a job's normal course.
    /// </summary>
    private static bool NothingSucceeded(BatchJob job) =>
        job.Status == JobStatus.Completed && job.RequestCounts is { Completed: 0, Failed: > 0 };

    /// <summary>What each engine of a drain on several (one per GPU) ran in the run's time; null for one engine.</summary>
    internal static string? EnginesLine(DrainResult? drain, TimeSpan elapsed) => drain is { Engines.Count: > 1 }
        ? "  " + string.Join("; ", drain.Engines.Select(e => FormattableString.Invariant(
            $"{e.Engine}: {e.Requests} requests, {e.OutputTokens} output tokens, {e.OutputTokens / elapsed.TotalSeconds:F0} tokens/s")))
        : null;

    /// <summary>
    /// The job's counts, and what this run did in how long: the job's own figures for a run that did it all (a job that
    /// ended at submit, an empty input say, included), this run's share when it resumed an interrupted one, none when the
    /// job had already ended before this run (its tokens were not made now).
    /// </summary>
    internal static string SummaryLine(BatchJob job, DrainResult? drain, bool endedBefore, TimeSpan elapsed)
    {
        var counts = job.RequestCounts;
        var status = JsonNamingPolicy.SnakeCaseLower.ConvertName(job.Status.ToString());
        var seconds = elapsed.TotalSeconds;
        var head = FormattableString.Invariant($"{status}: {counts.Completed} succeeded, {counts.Failed} failed of {counts.Total}");
        if (endedBefore)
        {
            return FormattableString.Invariant($"{head} ({job.Usage.OutputTokens} output tokens); it had already ended: nothing was run now");
        }
        return drain switch
        {
            null or { CheckpointedBefore: 0 } => FormattableString.Invariant(
                $"{head} in {seconds:F1} s ({drain?.OutputTokens ?? 0} output tokens, {(drain?.OutputTokens ?? 0) / seconds:F0} tokens/s)"),
            _ => FormattableString.Invariant(
                $"{head} ({job.Usage.OutputTokens} output tokens); resumed: {drain.CheckpointedBefore} were done before, this run did {drain.Requests} in {seconds:F1} s ({drain.OutputTokens} output tokens, {drain.OutputTokens / seconds:F0} tokens/s)"),
        };
    }
}

using System.CommandLine;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Pipelines;

namespace VicunaBatch.Cli;

/// <summary><c>vicuna-batch pipeline run FILE</c>: one run of a summarization pipeline now, on this machine.</summary>
internal static class PipelineCommand
{
    public static Command Create()
    {
        var modelOptions = new ModelOptions();
        var file = new Argument<FileInfo>("FILE") { Description = "Pipeline definition (JSON): name, source, prompt, schedule, output, webhook, chunking." };
        var source = new Option<DirectoryInfo?>("--source") { Description = "Read documents from this folder instead of the definition's source." };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Write summaries and the manifest here instead of the definition's output (state in OUT/.state/)." };
        var workers = new Option<int>("--workers") { Description = "Shards in flight at once, all feeding the one engine; more while fewer than 8 × its KV slots of requests are in flight (a GPU's many slots), up to 32.", DefaultValueFactory = _ => 4 };
        var run = new Command("run", "Summarize the documents that are new or changed since the last run, now.") { file, source, output, workers };
        modelOptions.AddTo(run, served: true);
        run.SetAction(async (ParseResult r, CancellationToken cancellationToken) =>
        {
            var settings = new LocalPipelineSettings(
                r.GetValue(file)!.FullName,
                r.GetValue(source)?.FullName,
                r.GetValue(output)?.FullName,
                modelOptions.OneServedModel(r, "pipeline run"),
                modelOptions.EngineOptions(r),
                r.GetValue(workers)) { ShowProgress = true };
            return await ExecuteAsync(settings, cancellationToken);
        });
        return new Command("pipeline", "Scheduled batch summarization pipelines.") { run };
    }

    private static async Task<int> ExecuteAsync(LocalPipelineSettings settings, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var summary = await new LocalPipelineRun(settings, TimeProvider.System).RunAsync(cancellationToken);
        var run = summary.Run;
        switch (run.Status)
        {
            case PipelineRunStatus.NothingToDo:
                Console.Out.WriteLine("nothing to do: no document is new or changed since the last run");
                return 0;
            case PipelineRunStatus.InProgress:
                Console.Out.WriteLine($"run {run.RunId}: a stage is still running; run the same command again to resume it");
                return 1;
            case PipelineRunStatus.Locked:
                Console.Error.WriteLine("another run of this pipeline holds its lock; nothing done");
                return 1;
        }
        var m = run.Manifest!;
        Console.Out.WriteLine(FormattableString.Invariant(
            $"run {m.RunId}: {m.NumSummarized} summarized, {Count(m.NumErrors, "error")} of {Count(m.NumDocuments, "document")} in {Count(m.Stages.Count, "stage")}, {clock.Elapsed.TotalSeconds:F1} s"));
        foreach (var doc in m.Documents)
        {
            Console.Out.WriteLine(doc.Status == ManifestDocumentStatus.Summarized
                ? $"  {doc.Key}: {Path.Combine(summary.OutputDirectory, doc.Summary!)} ({Count(doc.NumChunks, "chunk")}, {Count(doc.NumStages, "stage")})"
                : $"  {doc.Key}: error {doc.ErrorCode!.Value.SnakeCase()}: {doc.Error}");
        }
        Console.Out.WriteLine($"  manifest: {Path.Combine(summary.OutputDirectory, RunManifest.BlobName(new PipelineLocation(summary.OutputDirectory, null, summary.OutputPrefix), m.RunId))}");
        foreach (var attempt in summary.WebhookAttempts)
            Console.Out.WriteLine($"  webhook {attempt.EventType}: {attempt.Outcome.SnakeCase()}{(attempt.StatusCode is { } code ? $" (HTTP {code})" : "")}{(attempt.Error is { } e ? $": {e}" : "")}");
        return 0;
    }

    /// <summary>"1 chunk", "17 chunks".</summary>
    internal static string Count(int n, string noun) => FormattableString.Invariant($"{n} {noun}{(n == 1 ? "" : "s")}");
}

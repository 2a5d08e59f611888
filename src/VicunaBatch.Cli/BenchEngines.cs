using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Cli;

/// <summary>
/// <c>bench</c> on several engines (<c>--gpus 0,1</c>; <c>--engines N</c> on the CPU): the model loaded once per engine,
/// in parallel; the workload dealt out longest first (prompt + max_tokens), one request to each engine in turn, so each
/// gets an even share of the work; every engine stepping its share on a thread of its own, all from t=0. It prints each
/// engine's figures (<see cref="BenchCommand.BenchReport"/>) and the total: every engine's output tokens over the wall time
/// from the first step to the last engine's end.
/// </summary>
internal static class BenchEngines
{
    public static int Run(ParseResult r, ModelOptions modelOptions, IReadOnlyList<EngineOptions> engines, Option<FileInfo> workload, Option<int> limit,
        Option<bool> respectEos, Option<float> temperature, Option<float> topP, Option<int?> topLogprobs, Option<int> choices, Option<bool> separateChoices,
        Option<bool> sequential, Option<bool> json, BenchCommand.DevicePeaks peaks)
    {
        var path = r.GetValue(modelOptions.Model)?.FullName ?? ModelOptions.DefaultModelPath;
        var models = ModelOptions.OpenShowingWait(path, engines);
        try
        {
            var requests = BenchCommand.WithChoices(BenchCommand.ReadWorkload(models[0], r.GetValue(workload)!, r.GetValue(limit), !r.GetValue(respectEos),
                r.GetValue(temperature), r.GetValue(topP), r.GetValue(topLogprobs)), r.GetValue(choices), r.GetValue(separateChoices));
            var labels = models.Select(Execution.EngineWorkers.LabelOf).ToList();
            var (ran, elapsed) = RunAll(models, Deal(requests, models.Count), r.GetValue(sequential));
            var reports = ran.Select(report => report with { Peaks = peaks }).ToList();
            Console.Out.WriteLine(r.GetValue(json) ? ToJson(reports, labels, elapsed) : ToTable(reports, labels, elapsed, models[0].Name, r.GetValue(sequential)));
            return reports.Sum(report => report.NumErrors) == 0 ? 0 : 1;
        }
        finally
        {
            foreach (var model in models) model.Dispose();
        }
    }

    /// <summary>Each engine's share: longest (prompt + max_tokens) first, one to each engine in turn (ties in workload order).</summary>
    internal static List<GenerationRequest>[] Deal(IReadOnlyList<GenerationRequest> requests, int numEngines)
    {
        var shares = Enumerable.Range(0, numEngines).Select(_ => new List<GenerationRequest>()).ToArray();
        var longestFirst = requests.Select((request, line) => (request, line))
            .OrderByDescending(x => (long)x.request.PromptIds.Count + x.request.MaxTokens).ThenBy(x => x.line);
        var next = 0;
        foreach (var (request, _) in longestFirst) shares[next++ % numEngines].Add(request);
        return shares;
    }

    /// <summary>Every engine's share on a thread of its own, started together; the wall time until the last one ends.</summary>
    internal static (IReadOnlyList<BenchCommand.BenchReport> Reports, TimeSpan Elapsed) RunAll(
        IReadOnlyList<LoadedModel> models, IReadOnlyList<List<GenerationRequest>> shares, bool sequential)
    {
        var total = shares.Sum(s => s.Count);
        var progress = new ProgressLine(total);
        var done = new (int Requests, long Tokens)[models.Count];
        var clock = Stopwatch.StartNew();
        var running = models.Select((model, i) => Task.Factory.StartNew(() => BenchCommand.Run(model.Engine, shares[i], sequential, (requests, tokens) =>
        {
            lock (progress)
            {
                done[i] = (requests, tokens);
                progress.Report(done.Sum(d => d.Requests), done.Sum(d => d.Tokens));
            }
        }), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        Task.WaitAll(running);
        var elapsed = clock.Elapsed;
        progress.Clear();
        return ([.. running.Select(t => t.Result)], elapsed);
    }

    private static string ToJson(IReadOnlyList<BenchCommand.BenchReport> reports, IReadOnlyList<string> labels, TimeSpan elapsed)
    {
        var json = Total(reports, elapsed);
        json["engines"] = new JsonArray([.. reports.Select((report, i) =>
        {
            var figures = report.Figures();
            figures.Insert(0, "engine", labels[i]);
            return (JsonNode)figures;
        })]);
        return json.ToJsonString(JsonOutput.Options);
    }

    /// <summary>The figures of all engines together: every request and token over the one wall time.</summary>
    private static JsonObject Total(IReadOnlyList<BenchCommand.BenchReport> reports, TimeSpan elapsed)
    {
        var tokens = reports.Sum(r => r.OutputTokens);
        var requests = reports.Sum(r => r.Results.Count);
        return new JsonObject
        {
            ["engines_count"] = reports.Count,
            ["requests"] = requests,
            ["errors"] = reports.Sum(r => r.NumErrors),
            ["output_tokens"] = tokens,
            ["seconds"] = Math.Round(elapsed.TotalSeconds, 3),
            ["output_tokens_per_s"] = Math.Round(tokens / elapsed.TotalSeconds, 1),
            ["requests_per_s"] = Math.Round(requests / elapsed.TotalSeconds, 3),
        };
    }

    private static string ToTable(IReadOnlyList<BenchCommand.BenchReport> reports, IReadOnlyList<string> labels, TimeSpan elapsed, string modelName, bool sequential)
    {
        var total = Total(reports, elapsed);
        var lines = new List<string>();
        for (var i = 0; i < reports.Count; i++)
        {
            lines.Add($"== {labels[i]}");
            lines.Add(reports[i].ToTable(modelName, sequential));
        }
        lines.Add($"== all {reports.Count} engines");
        lines.Add($"requests              {total["requests"]} ({total["errors"]} errors)");
        lines.Add($"output tokens         {total["output_tokens"]}");
        lines.Add($"wall time             {elapsed.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)} s");
        lines.Add($"output tokens/s       {((double)total["output_tokens_per_s"]!).ToString("F1", CultureInfo.InvariantCulture)}");
        lines.Add($"requests/s            {((double)total["requests_per_s"]!).ToString("F3", CultureInfo.InvariantCulture)}");
        return string.Join('\n', lines);
    }
}

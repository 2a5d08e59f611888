using System.CommandLine;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Cli;

/// <summary>
/// <c>vicuna-batch check FILE RESULTS [--webhook-log LOG] [--max-line-bytes N]</c>: are a job's results whole? Every valid custom_id of
/// FILE once across output.jsonl and errors.jsonl, every rejected line in errors.jsonl, counts in job.json that agree
/// (and one terminal event for the job in a webhook receiver's log). Exit 0 when whole, 1 with the problems.
/// </summary>
internal static class CheckCommand
{
    public static Command Create()
    {
        var file = new Argument<FileInfo>("FILE") { Description = "The job's input (JSONL or .txt), as submitted." };
        var results = new Argument<DirectoryInfo>("RESULTS") { Description = "The folder with output.jsonl, errors.jsonl and job.json (run's --out)." };
        var webhookLog = new Option<FileInfo?>("--webhook-log") { Description = "A webhook receiver's log: one received event body (JSON) per line." };
        var maxLineBytes = InputFlags.MaxLineBytes(); // the job's: a line over it is a rejected line
        var command = new Command("check", "Check that a job's results account for every input line exactly once.") { file, results, webhookLog, maxLineBytes };
        command.SetAction(async (ParseResult r, CancellationToken cancellationToken) =>
        {
            var input = r.GetValue(file)!;
            var folder = r.GetValue(results)!;
            var log = r.GetValue(webhookLog);
            foreach (var path in new[] { input.FullName, Path.Combine(folder.FullName, "output.jsonl"), Path.Combine(folder.FullName, "errors.jsonl"), Path.Combine(folder.FullName, "job.json") }
                         .Concat(log is null ? [] : [log.FullName]))
            {
                if (!File.Exists(path)) throw new UsageException($"not found: {path}");
            }
            var limits = new InputOptions { MaxLineBytes = r.GetValue(maxLineBytes) };
            limits.Validate();
            var report = await CheckAsync(input.FullName, folder.FullName, log?.FullName, limits, cancellationToken);
            foreach (var problem in report.Problems) Console.Out.WriteLine(problem);
            var events = report.NumTerminalEvents is { } n ? $", {n} terminal webhook event{(n == 1 ? "" : "s")}" : "";
            Console.Out.WriteLine(FormattableString.Invariant(
                $"{(report.IsWhole ? "whole" : $"NOT whole ({report.Problems.Count} problems)")}: {report.NumValidRequests} valid requests and {report.NumRejectedLines} rejected lines; {report.NumOutputLines} in output.jsonl, {report.NumErrorLines} in errors.jsonl{events}"));
            return report.IsWhole ? 0 : 1;
        });
        return command;
    }

    public static async Task<CheckReport> CheckAsync(string inputPath, string resultsFolder, string? webhookLogPath, CancellationToken cancellationToken = default) =>
        await CheckAsync(inputPath, resultsFolder, webhookLogPath, new InputOptions(), cancellationToken);

    /// <summary>As the job read its input: <paramref name="limits"/> are the job's (<c>--max-line-bytes</c>).</summary>
    public static async Task<CheckReport> CheckAsync(string inputPath, string resultsFolder, string? webhookLogPath, InputOptions limits,
        CancellationToken cancellationToken = default)
    {
        await using var input = File.OpenRead(inputPath);
        await using var output = File.OpenRead(Path.Combine(resultsFolder, "output.jsonl"));
        await using var errors = File.OpenRead(Path.Combine(resultsFolder, "errors.jsonl"));
        await using var job = File.OpenRead(Path.Combine(resultsFolder, "job.json"));
        await using var log = webhookLogPath is null ? null : File.OpenRead(webhookLogPath);
        return await new ResultsChecker(limits)
            .CheckAsync(input, InputOptions.FormatFromName(inputPath), output, errors, job, log, cancellationToken);
    }
}

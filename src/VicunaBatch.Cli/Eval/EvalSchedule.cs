using System.Text.Json.Nodes;
using VicunaBatch.Core.Pipelines;

namespace VicunaBatch.Cli.Eval;

/// <summary>
/// Scheduled evaluations in <c>serve --pipelines DIR</c>: each tick, each evaluation definition with a <c>schedule</c>
/// runs (<see cref="EvalRun"/>) by the pipelines' own rule (<see cref="PipelineTicker.Decide"/>: the first tick marks the
/// time, then one run per occurrence, an unfinished run resumed, 5 minutes after a failure). The mark is
/// <c>OUT/schedule.json</c>.
/// </summary>
internal sealed class EvalSchedule(TimeProvider time)
{
    /// <summary>After a failed run, how long before a tick resumes it (a schedule occurrence still runs it).</summary>
    public static readonly TimeSpan RetryDelay = TimeSpan.FromMinutes(5);

    /// <summary>The run this tick made, or null when none was due.</summary>
    public async Task<EvalRunResult?> TickAsync(EvalDefinition definition, CancellationToken cancellationToken = default)
    {
        if (definition.Schedule is not { } schedule) return null;
        var now = time.GetUtcNow();
        var markPath = Path.Combine(definition.Out, "schedule.json");
        var mark = File.Exists(markPath) && JsonNode.Parse(await File.ReadAllTextAsync(markPath, cancellationToken)) is JsonObject m
            ? new PipelineScheduleMark(m["last_tick_at"]!.GetValue<DateTimeOffset>(), m["last_failed_at"]?.GetValue<DateTimeOffset>())
            : null;
        switch (PipelineTicker.Decide(schedule, mark, File.Exists(Path.Combine(definition.Out, "current.json")), now, RetryDelay))
        {
            case ScheduledTick.MarkOnly:
                WriteMark(markPath, now, failed: false);
                return null;
            case ScheduledTick.NotDue:
                return null;
        }
        try
        {
            var result = await new EvalRun(definition, time).RunAsync(cancellationToken);
            WriteMark(markPath, now, failed: false);
            return result;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            WriteMark(markPath, now, failed: true);
            throw;
        }
    }

    private static void WriteMark(string path, DateTimeOffset at, bool failed) =>
        EvalFolder.WriteAtomically(path, System.Text.Encoding.UTF8.GetBytes(
            new JsonObject { ["last_tick_at"] = at, ["last_failed_at"] = failed ? at : null }.ToJsonString() + "\n"));
}

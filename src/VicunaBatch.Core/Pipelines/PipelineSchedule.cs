using Cronos;

namespace VicunaBatch.Core.Pipelines;

/// <summary>
/// A pipeline's timer: a 5-field cron expression (minute hour day month weekday) or a 6-field NCRONTAB one with
/// seconds first (as Azure Functions timers take), parsed by Cronos; times are UTC.
/// </summary>
public sealed class PipelineSchedule
{
    private readonly CronExpression _cron;

    private PipelineSchedule(string expression, CronExpression cron) => (Expression, _cron) = (expression, cron);

    public string Expression { get; }

    /// <summary>Whether the expression has a seconds field (6 fields, NCRONTAB).</summary>
    public bool HasSeconds { get; private init; }

    /// <exception cref="PipelineDefinitionException">Not a cron expression; the reason is the parser's.</exception>
    public static PipelineSchedule Parse(string expression, string field = "schedule")
    {
        var numFields = expression.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        if (numFields is not (5 or 6))
            throw new PipelineDefinitionException(field, $"\"{expression}\" has {numFields} fields; a schedule has 5 (cron) or 6 (NCRONTAB, seconds first)");
        try
        {
            var cron = CronExpression.Parse(expression.Trim(), numFields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
            return new PipelineSchedule(expression, cron) { HasSeconds = numFields == 6 };
        }
        catch (CronFormatException e)
        {
            throw new PipelineDefinitionException(field, $"\"{expression}\" is not a valid cron expression: {e.Message}");
        }
    }

    /// <summary>The first occurrence strictly after <paramref name="after"/>; null when there is none.</summary>
    public DateTimeOffset? NextAfter(DateTimeOffset after) => _cron.GetNextOccurrence(after, TimeZoneInfo.Utc);

    /// <summary>Whether an occurrence falls in (<paramref name="after"/>, <paramref name="upTo"/>]: a tick is due.</summary>
    public bool IsDue(DateTimeOffset after, DateTimeOffset upTo) => NextAfter(after) is { } next && next <= upTo;

    public override string ToString() => Expression;
}

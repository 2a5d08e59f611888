using VicunaBatch.Core.Pipelines;

namespace VicunaBatch.Core.Tests.Pipelines;

public sealed class PipelineScheduleTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 9, 30, 15, TimeSpan.Zero);

    [Fact]
    public void Parse_cron_nextOccurrenceInUtc()
    {
        var schedule = PipelineSchedule.Parse("0 2 * * *");

        Assert.False(schedule.HasSeconds);
        Assert.Equal(new DateTimeOffset(2026, 12, 2, 2, 0, 0, TimeSpan.Zero), schedule.NextAfter(Start));
    }

    [Fact]
    public void Parse_ncrontabWithSeconds_nextOccurrenceToTheSecond()
    {
        var schedule = PipelineSchedule.Parse("*/20 * * * * *");

        Assert.True(schedule.HasSeconds);
        Assert.Equal(Start.AddSeconds(5), schedule.NextAfter(Start));
        Assert.True(schedule.IsDue(Start, Start.AddSeconds(5)));
        Assert.False(schedule.IsDue(Start, Start.AddSeconds(4)));
    }

    [Theory]
    [InlineData("", "\"\" has 0 fields; a schedule has 5 (cron) or 6 (NCRONTAB, seconds first)")]
    [InlineData("* * * *", "\"* * * *\" has 4 fields; a schedule has 5 (cron) or 6 (NCRONTAB, seconds first)")]
    [InlineData("0 0 0 * * * *", "\"0 0 0 * * * *\" has 7 fields; a schedule has 5 (cron) or 6 (NCRONTAB, seconds first)")]
    [InlineData("0 25 * * *", "\"0 25 * * *\" is not a valid cron expression: The given cron expression has an invalid format. Hours: Value must be a number between 0 and 23 (all inclusive).")]
    [InlineData("0 2 * * mon-fry", "\"0 2 * * mon-fry\" is not a valid cron expression: The given cron expression has an invalid format. Days of week: Value must be a number between 0 and 7 (all inclusive).")]
    [InlineData("60 0 2 * * *", "\"60 0 2 * * *\" is not a valid cron expression: The given cron expression has an invalid format. Seconds: Value must be a number between 0 and 59 (all inclusive).")]
    [InlineData("every night", "\"every night\" has 2 fields; a schedule has 5 (cron) or 6 (NCRONTAB, seconds first)")]
    public void Parse_badExpression_rejectedWithTheParsersReason(string expression, string reason)
    {
        var e = Assert.Throws<PipelineDefinitionException>(() => PipelineSchedule.Parse(expression));

        Assert.Equal("schedule", e.Field);
        Assert.Equal(reason, e.Reason);
    }
}

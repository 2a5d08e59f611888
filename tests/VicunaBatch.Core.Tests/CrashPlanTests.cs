using VicunaBatch.Core.Diagnostics;

namespace VicunaBatch.Core.Tests;

public sealed class CrashPlanTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void Parse_unset_isNoPlan(string? value) => Assert.Null(CrashPlan.Parse(value));

    [Theory]
    [InlineData("request.after-checkpoint", "request.after-checkpoint", null, 1)]
    [InlineData("request.after-checkpoint#12", "request.after-checkpoint", null, 12)]
    [InlineData("shard.start@3", "shard.start", "3", 1)]
    [InlineData("request.before-checkpoint@id#with#hash#2", "request.before-checkpoint", "id#with#hash", 2)]
    public void Parse_pointDetailAndCount(string value, string point, string? detail, int hit) =>
        Assert.Equal(new CrashPlan(point, detail, hit), CrashPlan.Parse(value));

    [Theory]
    [InlineData("request.after-checkpoitn", "unknown crash point \"request.after-checkpoitn\"")]
    [InlineData("shard.start#0", "whole number >= 1")]
    [InlineData("shard.start#x", "whole number >= 1")]
    public void Parse_malformed_failsNamingTheProblem(string value, string expected) =>
        Assert.Contains(expected, Assert.Throws<ArgumentException>(() => CrashPlan.Parse(value)).Message);

    [Fact]
    public void Matches_detailOnlyWhenGiven()
    {
        Assert.True(new CrashPlan("shard.start", null, 1).Matches("shard.start", "7"));
        Assert.True(new CrashPlan("shard.start", "7", 1).Matches("shard.start", "7"));
        Assert.False(new CrashPlan("shard.start", "7", 1).Matches("shard.start", "8"));
        Assert.False(new CrashPlan("shard.start", null, 1).Matches("shard.after-complete", "7"));
    }
}

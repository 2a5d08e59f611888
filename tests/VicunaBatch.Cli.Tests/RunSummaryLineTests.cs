using VicunaBatch.Core.Jobs;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// <c>run</c>'s last line: a job run whole reports its own throughput; a resumed one reports this run's share, not the
/// job's tokens over the time of the rest; a job that had already ended reports no throughput at all.
/// </summary>
public sealed class RunSummaryLineTests
{
    private static BatchJob Job() => new()
    {
        Id = "batch_1", Endpoint = "/v1/completions", InputFileId = "inputs/batch_1.jsonl", Status = JobStatus.Completed,
        RequestCounts = new RequestCounts(60, 56, 4), Usage = new BatchUsage(1_000, 2_000, 3_000),
    };

    [Fact]
    public void A_job_run_whole_reports_its_tokens_per_second()
    {
        var line = RunCommand.SummaryLine(Job(), new DrainResult(Job(), 0, 56, 2_000, []), endedBefore: false, TimeSpan.FromSeconds(4));

        Assert.Equal("completed: 56 succeeded, 4 failed of 60 in 4.0 s (2000 output tokens, 500 tokens/s)", line);
    }

    [Fact]
    public void A_resumed_job_reports_what_this_run_did()
    {
        var line = RunCommand.SummaryLine(Job(), new DrainResult(Job(), 40, 16, 600, []), endedBefore: false, TimeSpan.FromSeconds(2));

        Assert.Equal("completed: 56 succeeded, 4 failed of 60 (2000 output tokens); resumed: 40 were done before, "
            + "this run did 16 in 2.0 s (600 output tokens, 300 tokens/s)", line);
    }

    [Fact]
    public void A_job_that_had_already_ended_reports_no_throughput()
    {
        var line = RunCommand.SummaryLine(Job(), drain: null, endedBefore: true, TimeSpan.FromSeconds(0.2));

        Assert.Equal("completed: 56 succeeded, 4 failed of 60 (2000 output tokens); it had already ended: nothing was run now", line);
    }

    [Fact]
    public void A_job_that_ends_at_submit_reports_this_run()
    {
        var failed = Job();
        failed.Status = JobStatus.Failed;
        failed.RequestCounts = new RequestCounts(0, 0, 0);
        failed.Usage = BatchUsage.Zero;

        var line = RunCommand.SummaryLine(failed, drain: null, endedBefore: false, TimeSpan.FromSeconds(0.5));

        Assert.Equal("failed: 0 succeeded, 0 failed of 0 in 0.5 s (0 output tokens, 0 tokens/s)", line);
    }

    [Fact]
    public void A_drain_on_several_engines_reports_each_engines_share()
    {
        var drain = new DrainResult(Job(), 0, 56, 2_000, [new EngineShare("GPU 0", 30, 1_200), new EngineShare("GPU 1", 26, 800)]);

        Assert.Equal("  GPU 0: 30 requests, 1200 output tokens, 300 tokens/s; GPU 1: 26 requests, 800 output tokens, 200 tokens/s",
            RunCommand.EnginesLine(drain, TimeSpan.FromSeconds(4)));
        Assert.Null(RunCommand.EnginesLine(new DrainResult(Job(), 0, 56, 2_000, [new EngineShare("engine 0", 56, 2_000)]), TimeSpan.FromSeconds(4)));
    }
}

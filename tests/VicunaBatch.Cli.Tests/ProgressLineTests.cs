namespace VicunaBatch.Cli.Tests;

/// <summary>The progress bar's text: counts, this process's tokens/s, and an ETA on the rate of what it has done itself.</summary>
public sealed class ProgressLineTests
{
    [Fact]
    public void A_fresh_job_estimates_the_rest_at_its_rate_so_far()
    {
        var line = ProgressLine.Format(done: 25, failed: 1, total: 100, tokens: 500, TimeSpan.FromSeconds(10));

        Assert.Equal("[########......................] 25/100 done, 1 failed | 50 tok/s | ETA 00:30", line);
    }

    [Fact]
    public void A_resumed_job_estimates_on_what_this_process_did_not_on_what_was_done_before()
    {
        // 80 were done by an earlier run; this one did 10 in 10 s: 10 left take 10 s, not 80 / 90 of a second
        var line = ProgressLine.Format(done: 90, failed: 0, total: 100, tokens: 200, TimeSpan.FromSeconds(10), doneAtStart: 80);

        Assert.EndsWith("90/100 done, 0 failed | 20 tok/s | ETA 00:10", line);
        Assert.EndsWith("ETA --:--", ProgressLine.Format(80, 0, 100, 0, TimeSpan.FromSeconds(3), doneAtStart: 80));
    }

    [Fact]
    public void An_eta_of_an_hour_or_more_shows_the_hours()
    {
        var line = ProgressLine.Format(done: 1, failed: 0, total: 100, tokens: 40, TimeSpan.FromSeconds(60));

        Assert.EndsWith("ETA 1:39:00", line);
    }
}

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// The progress bar's text: counts, this process's tokens/s, and an ETA on the rate of what it has done itself; and
/// when it is written: a bar redrawn on a terminal, a plain line every 10 s into a log.
/// </summary>
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

    [Fact]
    public void Into_a_log_a_plain_line_every_ten_seconds_none_for_a_short_job()
    {
        var now = TimeSpan.Zero;
        var log = new StringWriter();
        var progress = new ProgressLine(total: 100, log, interactive: false, () => now);

        foreach (var (seconds, done) in new[] { (0.0, 0), (2.5, 10), (9.9, 30), (10.0, 31), (15.0, 50), (20.5, 70), (21.0, 71) })
        {
            now = TimeSpan.FromSeconds(seconds);
            progress.Report(done, tokens: done * 10);
        }
        progress.Clear();

        Assert.Equal(
            ["31/100 done, 0 failed | 31 tok/s | ETA 00:22", "70/100 done, 0 failed | 34 tok/s | ETA 00:08"],
            log.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void On_a_terminal_the_bar_is_redrawn_in_place_at_most_four_times_a_second_and_cleared()
    {
        var now = TimeSpan.Zero;
        var terminal = new StringWriter();
        var progress = new ProgressLine(total: 10, terminal, interactive: true, () => now);

        foreach (var (ms, done) in new[] { (0, 0), (100, 1), (250, 2), (400, 3), (600, 4) })
        {
            now = TimeSpan.FromMilliseconds(ms);
            progress.Report(done, tokens: 0);
        }
        progress.Clear();

        var draws = terminal.ToString().Split('\r', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["0/10", "2/10", "4/10"], draws[..^1].Select(d => d.Split(' ')[1]));
        Assert.Equal("\u001b[K", draws[^1]);
        Assert.DoesNotContain('\n', terminal.ToString());
    }

    [Fact]
    public void A_wait_is_said_into_a_log_every_ten_seconds_with_its_notes_and_nothing_after_it_ends()
    {
        var now = TimeSpan.Zero;
        var log = new StringWriter();
        var waiting = new WaitingLine(log, interactive: false, () => now);

        foreach (var seconds in new[] { 0.25, 5.0, 9.9, 10.0, 12.0, 19.0, 20.1 })
        {
            now = TimeSpan.FromSeconds(seconds);
            waiting.Report("loading the model");
        }
        waiting.Note("9 of the 16 KV slots asked fit");
        waiting.Done();
        now = TimeSpan.FromSeconds(40);
        waiting.Report("loading the model");
        waiting.Done();

        Assert.Equal(
            ["loading the model (10 s)", "loading the model (20 s)", "9 of the 16 KV slots asked fit"],
            log.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void On_a_terminal_a_wait_shows_after_a_second_in_place_and_leaves_no_trace()
    {
        var now = TimeSpan.Zero;
        var terminal = new StringWriter();
        var waiting = new WaitingLine(terminal, interactive: true, () => now);

        foreach (var ms in new[] { 250, 750, 1000, 1100, 1300, 2000, 2100 })
        {
            now = TimeSpan.FromMilliseconds(ms);
            waiting.Report("loading the model");
        }
        waiting.Done();

        // drawn when its text changes, at most four times a second; cleared at the end
        Assert.Equal("\rloading the model (1 s)\u001b[K\rloading the model (2 s)\u001b[K\r\u001b[K", terminal.ToString());
    }

    [Fact]
    public void A_quick_start_shows_no_wait_at_all()
    {
        var now = TimeSpan.FromMilliseconds(300);
        var terminal = new StringWriter();
        var waiting = new WaitingLine(terminal, interactive: true, () => now);

        waiting.Report("validating and queueing the input, loading the model");
        waiting.Done();

        Assert.Equal("", terminal.ToString());
    }
}

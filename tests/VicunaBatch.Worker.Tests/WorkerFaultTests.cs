using VicunaBatch.Testing;
using System.Globalization;
using VicunaBatch.Core.Diagnostics;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Results;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Worker.Tests;

/// <summary>
/// Real <c>vicuna-worker</c> processes on the SQLite queue and folder stores, killed or starved of their locks;
/// every job still ends with each custom_id exactly once across output and errors (the checker's verdict).
/// </summary>
public sealed class WorkerFaultTests : IDisposable
{
    private readonly WorkerFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task A_shard_that_crashes_its_worker_every_time_is_dead_lettered_and_the_job_completes_with_its_requests_as_errors()
    {
        var lines = Enumerable.Range(0, 32).Select(i => WorkerFolder.Prompt($"r{i}", 4)).ToList();
        var job = await _folder.SubmitAsync(lines);
        var settings = Settings();
        settings[CrashPoints.Variable] = "shard.start@1"; // every worker that starts shard 1 dies (SIGKILL) on the spot
        settings["Worker__MaxDeliveriesWithoutProgress"] = "2";
        settings["Worker__MaxConcurrentShards"] = "1"; // the poison shard takes no other shard down with it

        var settled = new List<ShardDoneEvent>();
        var exitCodes = new List<int>();
        for (var start = 0; start < 6 && settled.Count < 4; start++)
        {
            using var worker = WorkerProcess.Start(settings); // as the platform restarts a crashed container
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!worker.HasExited && settled.Count < 4 && DateTime.UtcNow < deadline)
            {
                settled.AddRange(await _folder.TakeSettledAsync());
                await Task.Delay(50);
            }
            if (!worker.HasExited) worker.SendSigterm();
            exitCodes.Add(await worker.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        Assert.Equal([137, 137, 0], exitCodes); // deliveries 1 and 2 crashed; the 3rd was dead-lettered before it ran
        var dead = Assert.Single(await _folder.WorkQueue.ReadDeadLettersAsync());
        Assert.Contains("2 deliveries in a row made no progress", dead.Reason);
        var finalized = await _folder.FinalizeAsync(job.Id);
        Assert.Equal(JobStatus.Completed, finalized.Job.Status);
        Assert.Equal(new RequestCounts(32, 24, 8), finalized.Job.RequestCounts);
        var errors = await _folder.ReadLinesAsync(JobIds.ErrorsBlob(job.Id));
        Assert.All(errors, e => Assert.Equal("shard_failed", ErrorLines.CodeOf(e)));
        Assert.Equal(Enumerable.Range(8, 8).Select(i => $"r{i}"), errors.Select(e => e.GetProperty("custom_id").GetString()));
        AssertWhole(await _folder.CheckAsync(job.Id, lines));
    }

    [Fact]
    public async Task Locks_that_expire_while_shards_run_send_them_to_a_second_worker_and_each_request_still_appears_once()
    {
        var lines = WorkerFolder.LongShards(numShards: 8);
        var job = await _folder.SubmitAsync(lines);
        var settings = WorkerFolder.WithLongRunningModel(Settings(lockSeconds: 1));
        settings["Worker__LockRenewalSeconds"] = "30"; // renewal comes too late: every lock held past 1 s expires

        using var first = WorkerProcess.Start(settings);
        await _folder.WaitForCheckpointsAsync(job.Id, 1);
        using var second = WorkerProcess.Start(settings);
        await _folder.WaitForSettledAsync(8, TimeSpan.FromSeconds(180));
        first.SendSigterm();
        second.SendSigterm();
        Assert.Equal(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(0, await second.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        Assert.Contains("its lock was lost", first.Output + second.Output); // the scenario happened: a shard changed hands mid-run
        var finalized = await _folder.FinalizeAsync(job.Id);
        Assert.Equal(new RequestCounts(64, 64, 0), finalized.Job.RequestCounts);
        AssertWhole(await _folder.CheckAsync(job.Id, lines)); // requests both workers ran are in output.jsonl once
    }

    [Fact]
    public async Task Renewed_locks_keep_each_shard_with_one_worker_so_no_request_runs_twice()
    {
        var lines = WorkerFolder.LongShards(numShards: 4);
        var job = await _folder.SubmitAsync(lines);
        // renewed every second: a 5 s lock leaves a loaded machine 4 s of slack (2 s locks once lost one on CI)
        var settings = WorkerFolder.WithLongRunningModel(Settings(lockSeconds: 5));

        using var first = WorkerProcess.Start(settings);
        using var second = WorkerProcess.Start(settings);
        await _folder.WaitForSettledAsync(4, TimeSpan.FromSeconds(180));
        first.SendSigterm();
        second.SendSigterm();
        Assert.Equal(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(0, await second.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        Assert.DoesNotContain("its lock was lost", first.Output + second.Output);
        var checkpointed = await _folder.ReadCheckpointedIdsAsync(job.Id);
        Assert.Equal(32, checkpointed.Count);
        Assert.Equal(32, checkpointed.Distinct().Count());
        await _folder.FinalizeAsync(job.Id);
        AssertWhole(await _folder.CheckAsync(job.Id, lines));
    }

    [Fact]
    public async Task Sigkill_when_the_grace_period_ends_mid_drain_loses_nothing_a_new_worker_finishes_the_job()
    {
        var lines = WorkerFolder.LongShards(numShards: 4);
        var job = await _folder.SubmitAsync(lines);
        // locks of 5 s, renewed every second: the killed worker's locks lapse soon after the kill, and neither worker
        // loses a lock it still renews on a loaded machine (with 2 s locks a late renewal let a worker receive its own
        // shard again and run 4 requests twice: at-least-once, deduplicated by the finalizer, but not what this test counts)
        var settings = WorkerFolder.WithLongRunningModel(Settings(lockSeconds: 5));
        settings["Worker__DrainSeconds"] = "30"; // longer than the platform waits: the drain is cut short

        using (var worker = WorkerProcess.Start(settings))
        {
            await _folder.WaitForCheckpointsAsync(job.Id, 1);
            worker.SendSigterm();
            await Task.Delay(TimeSpan.FromSeconds(1)); // the grace period
            worker.SendSigkill();
            Assert.Equal(137, await worker.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.Contains("stopping: no new shards", worker.Output);
        }
        var before = await _folder.ReadCheckpointedIdsAsync(job.Id);
        Assert.InRange(before.Count, 1, 31);

        using (var worker = WorkerProcess.Start(Settings(lockSeconds: 30)))
        {
            await _folder.WaitForSettledAsync(4, TimeSpan.FromSeconds(180));
            worker.SendSigterm();
            Assert.Equal(0, await worker.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }
        var after = await _folder.ReadCheckpointedIdsAsync(job.Id);
        Assert.Equal(32, after.Count); // what was checkpointed before the kill was not run again
        Assert.Equal(32, after.Distinct().Count());
        await _folder.FinalizeAsync(job.Id);
        AssertWhole(await _folder.CheckAsync(job.Id, lines));
    }

    [Fact]
    public async Task Sigkill_after_a_shard_is_acknowledged_but_before_its_event_is_sent_the_sweep_recovers_the_event()
    {
        var lines = Enumerable.Range(0, 32).Select(i => WorkerFolder.Prompt($"r{i}", 4)).ToList();
        var job = await _folder.SubmitAsync(lines);
        var settings = Settings();
        settings["Worker__MaxConcurrentShards"] = "1";
        using (var worker = WorkerProcess.Start(new Dictionary<string, string>(settings) { [CrashPoints.Variable] = "shard.after-complete#1" }))
            Assert.Equal(137, await worker.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(3, await _folder.WorkQueue.CountAsync()); // the first shard's message is gone: completed
        Assert.Empty(await _folder.TakeSettledAsync());                // ... but nobody heard of it

        using (var worker = WorkerProcess.Start(settings))
        {
            var events = await _folder.WaitForSettledAsync(3, TimeSpan.FromSeconds(120));
            Assert.Equal(3, events.Select(e => e.ShardIndex).Distinct().Count());
            worker.SendSigterm();
            Assert.Equal(0, await worker.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }
        var sweep = await _folder.SweepAsync(); // the timer that runs every few minutes on Azure
        Assert.Equal([job.Id], sweep.Rechecked);
        Assert.Single(await _folder.WaitForSettledAsync(1, TimeSpan.FromSeconds(5)));
        var finalized = await _folder.FinalizeAsync(job.Id);
        Assert.Equal(JobStatus.Completed, finalized.Job.Status);
        Assert.Equal(32, (await _folder.ReadCheckpointedIdsAsync(job.Id)).Distinct().Count());
        AssertWhole(await _folder.CheckAsync(job.Id, lines));
    }

    private static void AssertWhole(CheckReport report) => Assert.True(report.IsWhole, string.Join("\n", report.Problems));

    /// <summary>A worker on the test's folder; <paramref name="lockSeconds"/> short, so a killed worker's shards come back soon.</summary>
    private Dictionary<string, string> Settings(int lockSeconds = 2) => new()
    {
        ["Local__DataPath"] = _folder.DataPath,
        ["Local__LockSeconds"] = lockSeconds.ToString(CultureInfo.InvariantCulture),
        ["Worker__LockRenewalSeconds"] = "1", // below the lock duration, as it must be (the lock-expiry test overrides it)
        ["Worker__DrainSeconds"] = "0",
        ["Worker__HealthUrls"] = "http://127.0.0.1:0",
        ["Worker__PollIntervalMs"] = "20",
        ["Input__RequestsPerShard"] = "8",
        ["Engine__NumThreads"] = "1",
    };
}

using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Worker.Tests;

/// <summary>SIGTERM to a real worker process: it stops taking shards, lets the held ones run for Worker:DrainSeconds,
/// releases what is left for another worker, and exits 0; a second worker finishes the job with no request run twice.</summary>
public sealed class WorkerShutdownTests : IDisposable
{
    private readonly WorkerFolder _folder = new();

    [Fact]
    public async Task Sigterm_with_drain_time_finishes_the_held_shards_and_leaves_the_rest_queued()
    {
        // 8 shards; with 4 KV slots the worker holds about 8 requests (2 x 4 slots): 2 shards, more only once a
        // wave of long requests (seconds) has ended, so most stay queued when SIGTERM comes
        var job = await _folder.SubmitAsync(WorkerFolder.LongShards(numShards: 8));
        using var worker = StartWorker(drainSeconds: 60, numSlots: 4);
        await _folder.WaitForCheckpointsAsync(job.Id, 1);
        worker.SendSigterm();

        Assert.Equal(0, await worker.WaitForExitAsync(TimeSpan.FromSeconds(90)));
        Assert.Contains("stopping: no new shards", worker.Output);
        Assert.Contains("drained: every held shard settled", worker.Output);
        var left = await _folder.WorkQueue.ReceiveAsync(10);
        Assert.InRange(left.Count, 4, 7);
        Assert.All(left, m => Assert.Equal(1, m.DeliveryCount)); // never taken by the stopping worker
        var settled = await _folder.WaitForSettledAsync(8 - left.Count, TimeSpan.FromSeconds(5));
        var states = await _folder.ReadShardStatesAsync(job.Id);
        Assert.Equal(settled.Select(e => e.ShardIndex).Order(), states.Keys.Order());
        Assert.All(states.Values, state => Assert.Equal(ShardState.Completed, state));
        Assert.Equal(8 * settled.Count, (await _folder.ReadCheckpointedIdsAsync(job.Id)).Count);
    }

    [Fact]
    public async Task Sigterm_without_drain_time_releases_the_held_shards_and_a_new_worker_finishes_with_no_request_run_twice()
    {
        var lines = WorkerFolder.LongShards(numShards: 4);
        var job = await _folder.SubmitAsync(lines);
        using (var worker = StartWorker(drainSeconds: 0))
        {
            await _folder.WaitForCheckpointsAsync(job.Id, 1);
            worker.SendSigterm();
            Assert.Equal(0, await worker.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("released for redelivery", worker.Output);
        }
        var before = await _folder.ReadCheckpointedIdsAsync(job.Id);
        Assert.InRange(before.Count, 1, 31); // the short requests ended; the long ones were cancelled mid-way
        Assert.Equal(4, await _folder.WorkQueue.CountAsync()); // every held message released, none completed

        using (var worker = StartWorker(drainSeconds: 30))
        {
            await _folder.WaitForSettledAsync(4, TimeSpan.FromSeconds(120));
            worker.SendSigterm();
            Assert.Equal(0, await worker.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }
        var after = await _folder.ReadCheckpointedIdsAsync(job.Id);
        Assert.Equal(after.Count, after.Distinct().Count()); // the requests checkpointed before were skipped, not redone
        Assert.Equal(32, after.Count);
        var finalized = await _folder.FinalizeAsync(job.Id);
        Assert.Equal((FinalizeStatus.Finalized, JobStatus.Completed), (finalized.Status, finalized.Job.Status));
        Assert.Equal(32, finalized.Job.RequestCounts.Completed);
        Assert.Empty((await _folder.CheckAsync(job.Id, lines)).Problems);
    }

    private WorkerProcess StartWorker(int drainSeconds, int numSlots = 16) => WorkerProcess.Start(WorkerFolder.WithLongRunningModel(new Dictionary<string, string>
    {
        ["Engine__MaxBatchSize"] = numSlots.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Local__DataPath"] = _folder.DataPath,
        ["Worker__DrainSeconds"] = drainSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Worker__HealthUrls"] = "http://127.0.0.1:0",
        ["Worker__PollIntervalMs"] = "20",
        ["Input__RequestsPerShard"] = "8",
        ["Engine__NumThreads"] = "1",
    }));

    public void Dispose() => _folder.Dispose();
}

using System.Globalization;
using System.Text.Json;
using VicunaBatch.Core.Jobs;

namespace VicunaBatch.Worker.Tests;

/// <summary>
/// Several <c>vicuna-worker</c> processes on one data folder (one per GPU, say) beside the control plane that
/// <c>serve</c> runs there (the shard-done handler reading their events): the work is shared, every job is finalized
/// once, and a worker that dies leaves no lock behind for the others to wait out.
/// </summary>
public sealed class SharedFolderTests : IDisposable
{
    private readonly WorkerFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Two_workers_share_the_shards_of_a_job_and_the_control_plane_ends_it_from_their_events()
    {
        using var first = WorkerProcess.Start(Settings());
        using var second = WorkerProcess.Start(Settings());
        await WaitForReadyAsync(first, second);
        var lines = Enumerable.Range(0, 80).Select(i => WorkerFolder.Prompt($"r{i}", 48)).ToList(); // 10 shards

        var job = await _folder.SubmitAsync(lines);
        var ended = await _folder.RunControlPlaneUntilEndedAsync(job.Id, TimeSpan.FromSeconds(180));

        Assert.Equal((JobStatus.Completed, new RequestCounts(80, 80, 0)), (ended.Status, ended.RequestCounts));
        var report = await _folder.CheckAsync(job.Id, lines);
        Assert.True(report.IsWhole, string.Join("\n", report.Problems));
        first.SendSigterm();
        second.SendSigterm();
        Assert.Equal(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(0, await second.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains($"of job {job.Id} completed", first.Output);  // each took shards of the job
        Assert.Contains($"of job {job.Id} completed", second.Output);
    }

    [Fact]
    public async Task A_worker_killed_mid_shard_leaves_its_shards_to_another_at_once_not_after_its_five_minute_locks()
    {
        var lines = WorkerFolder.LongShards(numShards: 4);
        var job = await _folder.SubmitAsync(lines);
        using (var killed = WorkerProcess.Start(WorkerFolder.WithLongRunningModel(Settings())))
        {
            await _folder.WaitForCheckpointsAsync(job.Id, 1);
            killed.SendSigkill();
            Assert.Equal(137, await killed.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        }

        // the killed worker's locks last 5 minutes: ending within 2 means its lease gave them back
        using var next = WorkerProcess.Start(WorkerFolder.WithLongRunningModel(Settings()));
        var ended = await _folder.RunControlPlaneUntilEndedAsync(job.Id, TimeSpan.FromMinutes(2));

        Assert.Equal((JobStatus.Completed, 32), (ended.Status, ended.RequestCounts.Completed));
        Assert.Equal(32, (await _folder.ReadCheckpointedIdsAsync(job.Id)).Distinct().Count());
        next.SendSigterm();
        Assert.Equal(0, await next.WaitForExitAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task A_worker_serves_the_model_it_is_named_for_and_leaves_other_models_shards_alone()
    {
        using var other = WorkerProcess.Start(new Dictionary<string, string>(Settings()) { ["Model__Name"] = WorkerFolder.OtherModel });
        await WaitForReadyAsync(other);
        string[] otherLines = [.. Enumerable.Range(0, 3).Select(i => JsonSerializer.Serialize(new
        {
            custom_id = $"o{i}", method = "POST", url = "/v1/completions",
            body = new { model = WorkerFolder.OtherModel, prompt = $"tell me about o{i}", max_tokens = 4 },
        }))];

        var defaultJob = await _folder.SubmitAsync([WorkerFolder.Prompt("d0", 4)]);
        var otherJob = await _folder.SubmitAsync(otherLines);
        var ended = await _folder.RunControlPlaneUntilEndedAsync(otherJob.Id, TimeSpan.FromSeconds(120));

        Assert.Equal((JobStatus.Completed, WorkerFolder.OtherModel), (ended.Status, ended.Model));
        Assert.All(await _folder.ReadLinesAsync(JobIds.OutputBlob(otherJob.Id)),
            line => Assert.Equal(WorkerFolder.OtherModel, line.GetProperty("response").GetProperty("body").GetProperty("model").GetString()));
        Assert.Equal(1, await _folder.CountQueuedAsync(WorkerFolder.Model)); // the default model's shard waits for its own worker
        Assert.Equal(WorkerFolder.Model, defaultJob.Model);
    }

    private async Task WaitForReadyAsync(params WorkerProcess[] workers)
    {
        for (var i = 0; i < 1200 && !workers.All(w => w.Output.Contains("worker ready", StringComparison.Ordinal)); i++) await Task.Delay(50);
        Assert.All(workers, w => Assert.Contains("worker ready", w.Output));
    }

    /// <summary>A worker on the test's folder whose locks last five minutes: only a dead receiver's lease gives them back sooner.</summary>
    private Dictionary<string, string> Settings() => new()
    {
        ["Local__DataPath"] = _folder.DataPath,
        ["Local__LockSeconds"] = (5 * 60).ToString(CultureInfo.InvariantCulture),
        ["Worker__DrainSeconds"] = "0",
        ["Worker__HealthUrls"] = "http://127.0.0.1:0",
        ["Worker__PollIntervalMs"] = "20",
        ["Input__RequestsPerShard"] = "8",
        ["Engine__NumThreads"] = "1",
    };
}

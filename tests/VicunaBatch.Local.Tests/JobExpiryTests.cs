using VicunaBatch.Testing;
using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Local.Tests;

/// <summary><see cref="JobFinalizer.TryExpireAsync"/> on the real local parts: the job's window is 24 h from <see cref="LocalRig.Start"/>.</summary>
public sealed class JobExpiryTests : IDisposable
{
    private const string Input =
        "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n" +
        "{bad json\n" +
        "{\"custom_id\":\"b\",\"prompt\":\"two\"}\n" +
        "{\"custom_id\":\"c\",\"prompt\":\"three\"}\n" +
        "{\"custom_id\":\"d\",\"prompt\":\"four\"}\n";

    private readonly LocalRig _rig = new(requestsPerShard: 2);

    public void Dispose() => _rig.Dispose();

    private static string CustomId(string line) => JsonDocument.Parse(line).RootElement.GetProperty("custom_id").GetString()!;

    /// <summary>Runs the first shard (a, b) to its report; the second (c, d) is left to <paramref name="partial"/>.</summary>
    private async Task RunFirstShardAsync(Action? partial = null)
    {
        await _rig.SubmitAsync("job1", Input);
        var processor = _rig.Processor(new EchoExecutor());
        await processor.ProcessAsync(Assert.Single(await _rig.Queue.ReceiveAsync(1)));
        partial?.Invoke();
    }

    [Fact]
    public async Task TryExpireAsync_beforeExpiresAt_notReadyAndUnchanged()
    {
        await RunFirstShardAsync();
        _rig.Time.Advance(TimeSpan.FromHours(24) - TimeSpan.FromSeconds(1));

        var result = await _rig.Finalizer.TryExpireAsync("job1");

        Assert.Equal((FinalizeStatus.NotReady, JobStatus.InProgress), (result.Status, (await _rig.Jobs.GetAsync("job1"))!.Job.Status));
    }

    [Fact]
    public async Task TryExpireAsync_pastTheWindowWithAShardUnreported_expiredWithWhatRanAndBatchExpiredLines()
    {
        await RunFirstShardAsync();
        // the second shard got as far as checkpointing c before the window closed
        var c = new BatchRequest { CustomId = "c", LineNumber = 4, Endpoint = BatchEndpoint.Completions, Prompt = "three" };
        await _rig.Checkpoints.AppendAsync("job1", 1, RequestOutcome.Success(c, "echo-model", "echo: three", FinishReason.Stop, 5, 2, LocalRig.Start) with { ShardIndex = 1 });
        _rig.Time.Advance(TimeSpan.FromHours(24));

        var result = await _rig.Finalizer.TryExpireAsync("job1");

        var job = (await _rig.Jobs.GetAsync("job1"))!.Job;
        Assert.Equal((FinalizeStatus.Finalized, JobStatus.Expired), (result.Status, job.Status));
        Assert.Equal((new RequestCounts(5, 3, 2), LocalRig.Start.AddHours(24).ToUnixTimeSeconds()), (job.RequestCounts, job.ExpiredAt));
        Assert.Equal(new BatchUsage(3 + 3 + 5, 6, 17), job.Usage);
        Assert.Equal((JobIds.OutputBlob("job1"), JobIds.ErrorsBlob("job1")), (job.OutputFileId, job.ErrorFileId));
        Assert.Equal(["a", "b", "c"], (await _rig.ReadLinesAsync(JobIds.OutputBlob("job1"))).Select(CustomId));
        var errors = await _rig.ReadLinesAsync(JobIds.ErrorsBlob("job1"));
        Assert.Equal(["line-2", "d"], errors.Select(CustomId));
        var expired = JsonDocument.Parse(errors[1]).RootElement;
        Assert.Equal(JsonValueKind.Null, expired.GetProperty("response").ValueKind);
        Assert.Equal("""{"code":"batch_expired","message":"This request could not be executed before the completion window expired."}""", expired.GetProperty("error").GetRawText());
    }

    [Fact]
    public async Task TryExpireAsync_finalizerWithOtherShardSizes_usesTheShardsRecordedAtSubmit()
    {
        // the submitter cut shards of 2; a finalizer whose process is set to 64 a shard must not cut its own
        await RunFirstShardAsync();
        _rig.Time.Advance(TimeSpan.FromHours(24));
        var finalizer = new JobFinalizer(_rig.Blobs, _rig.Jobs, _rig.Checkpoints, new InputOptions { RequestsPerShard = 64 }, _rig.Time);

        var result = await finalizer.TryExpireAsync("job1");

        Assert.Equal((FinalizeStatus.Finalized, JobStatus.Expired, new RequestCounts(5, 2, 3)), (result.Status, result.Job.Status, result.Job.RequestCounts));
        Assert.Equal(["a", "b"], (await _rig.ReadLinesAsync(JobIds.OutputBlob("job1"))).Select(CustomId));
        var errors = await _rig.ReadLinesAsync(JobIds.ErrorsBlob("job1"));
        Assert.Equal(["line-2", "c", "d"], errors.Select(CustomId));
        // c and d never ran: their shard (1) has no report; cut again as one shard of 64 they would read as shard 0's, failed
        Assert.All(errors.Skip(1), e => Assert.Equal("batch_expired", ErrorLines.CodeOf(JsonDocument.Parse(e).RootElement)));
    }

    [Fact]
    public async Task TryExpireAsync_everyShardReported_finalizesAsCompletedInstead()
    {
        await _rig.SubmitAsync("job1", Input);
        await _rig.DrainAsync(_rig.Processor(new EchoExecutor()));
        _rig.Time.Advance(TimeSpan.FromDays(2));

        var result = await _rig.Finalizer.TryExpireAsync("job1");

        Assert.Equal((FinalizeStatus.Finalized, JobStatus.Completed, new RequestCounts(5, 4, 1)), (result.Status, result.Job.Status, result.Job.RequestCounts));
    }

    [Fact]
    public async Task TryExpireAsync_afterACrashBetweenStatusAndFiles_writesTheSameFilesAgain()
    {
        await RunFirstShardAsync();
        _rig.Time.Advance(TimeSpan.FromHours(25));
        await _rig.Finalizer.TryExpireAsync("job1");
        var output = await _rig.Blobs.ReadBytesAsync(JobIds.OutputBlob("job1"));
        var errors = await _rig.Blobs.ReadBytesAsync(JobIds.ErrorsBlob("job1"));
        var stored = (await _rig.Jobs.GetAsync("job1"))!;
        stored.Job.OutputFileId = stored.Job.ErrorFileId = null; // as saved before the files
        await _rig.Jobs.SaveAsync(stored.Job, stored.ETag);
        await _rig.Blobs.DeleteAsync(JobIds.OutputBlob("job1"));

        var again = await _rig.Finalizer.TryExpireAsync("job1");

        Assert.Equal((FinalizeStatus.Finalized, JobStatus.Expired), (again.Status, again.Job.Status));
        Assert.Equal(output, await _rig.Blobs.ReadBytesAsync(JobIds.OutputBlob("job1")));
        Assert.Equal(errors, await _rig.Blobs.ReadBytesAsync(JobIds.ErrorsBlob("job1")));
        Assert.Equal(FinalizeStatus.Skipped, (await _rig.Finalizer.TryExpireAsync("job1")).Status);
    }

    [Fact]
    public async Task TryExpireAsync_cancellingOrEndedJob_skipped()
    {
        await RunFirstShardAsync();
        var stored = (await _rig.Jobs.GetAsync("job1"))!;
        JobStateMachine.Transition(stored.Job, JobStatus.Cancelling, _rig.Time.GetUtcNow());
        await _rig.Jobs.SaveAsync(stored.Job, stored.ETag);
        _rig.Time.Advance(TimeSpan.FromDays(2));

        Assert.Equal(FinalizeStatus.Skipped, (await _rig.Finalizer.TryExpireAsync("job1")).Status);
        Assert.Equal(JobStatus.Cancelling, (await _rig.Jobs.GetAsync("job1"))!.Job.Status);
    }

    [Fact]
    public async Task TryFinalizeAsync_lateReportAfterExpiry_leavesTheJobExpired()
    {
        await RunFirstShardAsync();
        _rig.Time.Advance(TimeSpan.FromHours(24));
        await _rig.Finalizer.TryExpireAsync("job1");
        await _rig.DrainAsync(_rig.Processor(new EchoExecutor())); // a worker still finishes the second shard

        var late = await _rig.Finalizer.TryFinalizeAsync("job1");

        Assert.Equal((FinalizeStatus.Skipped, JobStatus.Expired), (late.Status, late.Job.Status));
        Assert.Equal(["a", "b"], (await _rig.ReadLinesAsync(JobIds.OutputBlob("job1"))).Select(CustomId));
    }
}

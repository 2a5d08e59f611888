using VicunaBatch.Testing;
using System.Text.Json;
using Azure.Storage.Queues.Models;
using VicunaBatch.Azure.Tests;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Functions.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class FinalizerFunctionTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const string Input =
        "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n" +
        "{bad json\n" +
        "{\"custom_id\":\"b\",\"prompt\":\"two\"}\n" +
        "{\"custom_id\":\"c\",\"prompt\":\"three\"}\n";

    private FunctionsRig _rig = null!;

    public Task InitializeAsync()
    {
        _rig = new FunctionsRig(azurite);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    private static QueueMessage Message(string text, long dequeueCount = 1) =>
        QueuesModelFactory.QueueMessage("m-1", "receipt", text, dequeueCount);

    private async Task<List<WebhookDelivery>> OutboxAsync() =>
        (await _rig.RawQueue(_rig.WebhooksName).PeekMessagesAsync(32)).Value
            .Select(m => WebhookDelivery.Parse(JsonDocument.Parse(m.MessageText).RootElement.GetProperty("body").GetString()!)).ToList();

    [Fact]
    public async Task Run_everyShardDone_completesTheJobOnceAndEnqueuesOneWebhook()
    {
        await _rig.SubmitAsync("job1", Input, new WebhookSettings("https://example.test/hook", []));
        Assert.Equal(2, await _rig.RunShardsAsync());

        Assert.Equal(2, await _rig.RunFinalizerAsync()); // the first event finds shard 1 unreported or both; either way one finalize

        var job = (await _rig.Jobs.GetAsync("job1"))!.Job;
        Assert.Equal((JobStatus.Completed, new RequestCounts(4, 3, 1)), (job.Status, job.RequestCounts));
        Assert.Equal(["a", "b", "c"], (await _rig.ReadLinesAsync(JobIds.OutputBlob("job1"))).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("custom_id").GetString()));
        var delivery = Assert.Single(await OutboxAsync());
        Assert.Equal(("batch.completed", "job1", "https://example.test/hook"), (delivery.EventType, delivery.JobId, delivery.Url));
    }

    [Fact]
    public async Task Run_eventBeforeTheLastShard_leavesTheJobRunning()
    {
        await _rig.SubmitAsync("job1", Input);
        await _rig.RunShardsAsync(maxShards: 1);

        await _rig.RunFinalizerAsync();

        var job = (await _rig.Jobs.GetAsync("job1"))!.Job;
        Assert.Equal(JobStatus.InProgress, job.Status);
        Assert.False(await _rig.Blobs.ExistsAsync(JobIds.OutputBlob("job1")));
    }

    [Theory]
    [InlineData("not json at all")]
    [InlineData("{\"id\":\"x\",\"body\":\"{\\\"job_id\\\":\\\"../etc\\\",\\\"shard_index\\\":0}\"}")]
    [InlineData("{\"id\":\"x\",\"body\":\"{\\\"shard_index\\\":-1}\"}")]
    public async Task Run_malformedMessage_isLoggedAndDroppedWithoutThrowing(string text)
    {
        await _rig.Function<FinalizerFunction>().RunAsync(Message(text), default); // returning lets the host delete it

        Assert.Empty(await OutboxAsync());
    }

    [Fact]
    public async Task Run_eventOfAJobThatDoesNotExist_isDropped()
    {
        var text = JsonSerializer.Serialize(new { id = "x", body = new ShardDoneEvent("no-such-job", 0).ToMessage().Body });

        await _rig.Function<FinalizerFunction>().RunAsync(Message(text), default);

        Assert.Null(await _rig.Jobs.GetAsync("no-such-job"));
    }

    [Fact]
    public async Task Run_jobWhoseStateIsBroken_throwsSoTheHostRetriesAndThenPoisonsIt()
    {
        await _rig.SubmitAsync("job1", Input);
        await _rig.RunShardsAsync(announce: false);
        await _rig.Blobs.DeleteAsync(JobIds.PlanBlob("job1"));
        var text = JsonSerializer.Serialize(new { id = "x", body = new ShardDoneEvent("job1", 1).ToMessage().Body });

        var e = await Assert.ThrowsAsync<BlobStoreException>(() => _rig.Function<FinalizerFunction>().RunAsync(Message(text, dequeueCount: 3), default));

        Assert.Equal(BlobStoreFailure.NotFound, e.Reason);
        Assert.Equal(JobStatus.InProgress, (await _rig.Jobs.GetAsync("job1"))!.Job.Status);
    }

    [Fact]
    public async Task Run_cancellingJob_itsShardsAreSkippedAndItIsCancelledWithBatchCancelledLinesAndEnqueuesBatchCancelled()
    {
        await _rig.SubmitAsync("job1", Input, new WebhookSettings("https://example.test/hook", []));
        var stored = (await _rig.Jobs.GetAsync("job1"))!;
        JobStateMachine.Transition(stored.Job, JobStatus.Cancelling, _rig.Time.GetUtcNow());
        await _rig.Jobs.SaveAsync(stored.Job, stored.ETag);
        await _rig.RunShardsAsync(); // the worker sees the job cancelling: it reports both shards without running them

        await _rig.RunFinalizerAsync();

        var job = (await _rig.Jobs.GetAsync("job1"))!.Job;
        Assert.Equal((JobStatus.Cancelled, new RequestCounts(4, 0, 4)), (job.Status, job.RequestCounts));
        Assert.Empty(await _rig.ReadLinesAsync(job.OutputFileId!));
        var errors = (await _rig.ReadLinesAsync(job.ErrorFileId!)).Select(l => ErrorLines.ErrorOf(l)).ToList();
        Assert.Equal(["batch_cancelled", "invalid_json", "batch_cancelled", "batch_cancelled"], errors.Select(e => e.GetProperty("code").GetString()));
        Assert.Equal("batch.cancelled", Assert.Single(await OutboxAsync()).EventType);
    }
}

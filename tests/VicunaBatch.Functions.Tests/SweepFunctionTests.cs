using System.Text.Json;
using Microsoft.Azure.Functions.Worker;
using VicunaBatch.Azure.Tests;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Jobs;

namespace VicunaBatch.Functions.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class SweepFunctionTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const string Input =
        "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n" +
        "{\"custom_id\":\"b\",\"prompt\":\"two\"}\n" +
        "{\"custom_id\":\"c\",\"prompt\":\"three\"}\n";

    private FunctionsRig _rig = null!;

    public Task InitializeAsync()
    {
        _rig = new FunctionsRig(azurite);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    private Task<SweepResult> SweepAsync() => _rig.Function<SweepFunction>().RunAsync(new TimerInfo(), default);

    private static string CustomId(string line) => JsonDocument.Parse(line).RootElement.GetProperty("custom_id").GetString()!;

    /// <summary>A job that ended with nothing to report (failed at submit) and whose process stopped before announcing it:
    /// no shard-done event will come, so the sweep announces it, once.</summary>
    [Fact]
    public async Task Run_jobEndedButNeverAnnounced_announcedOnceAndItsEventReachesTheWebhook()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var job = await _rig.SubmitAsync("job1", "\n", new WebhookSettings(receiver.Url, [])); // empty: failed, not announced
        Assert.Equal(JobStatus.Failed, job.Status);

        Assert.Equal(["job1"], (await SweepAsync()).Announced);
        Assert.Empty((await SweepAsync()).Announced); // announced: the next sweep does not read it

        Assert.Equal(1, await _rig.RunDelivererAsync());
        var (status, _, body) = Assert.Single(receiver.Received);
        Assert.Equal((200, "batch.failed"), (status, JsonDocument.Parse(body).RootElement.GetProperty("type").GetString()));
    }

    [Fact]
    public async Task Run_jobPastItsWindow_expiresWithPartialResultsAndItsWebhook()
    {
        await _rig.SubmitAsync("job1", Input, new WebhookSettings("https://example.test/hook", []), window: TimeSpan.FromHours(1));
        await _rig.RunShardsAsync(maxShards: 1); // shard 0 (a, b) ran; shard 1 (c) never did
        Assert.Empty((await SweepAsync()).Expired); // not due yet
        _rig.Time.Advance(TimeSpan.FromHours(1));

        var result = await SweepAsync();

        Assert.Equal(["job1"], result.Expired.Select(e => e.Job.Id));
        var job = (await _rig.Jobs.GetAsync("job1"))!.Job;
        Assert.Equal((JobStatus.Expired, new RequestCounts(3, 2, 1)), (job.Status, job.RequestCounts));
        Assert.Equal(["a", "b"], (await _rig.ReadLinesAsync(JobIds.OutputBlob("job1"))).Select(CustomId));
        var expired = JsonDocument.Parse(Assert.Single(await _rig.ReadLinesAsync(JobIds.ErrorsBlob("job1")))).RootElement;
        Assert.Equal(("c", JsonValueKind.Null, "batch_expired"),
            (expired.GetProperty("custom_id").GetString(), expired.GetProperty("response").ValueKind, expired.GetProperty("error").GetProperty("code").GetString()));
        var outbox = Assert.Single((await _rig.RawQueue(_rig.WebhooksName).PeekMessagesAsync(32)).Value);
        Assert.Contains("batch.expired", outbox.MessageText);
        Assert.Empty((await SweepAsync()).Expired); // ended: the next sweep leaves it alone
    }

    [Fact]
    public async Task Run_shardDoneEventsLost_sendsAFinalizeCheckThatCompletesTheJob()
    {
        await _rig.SubmitAsync("job1", Input);
        await _rig.SubmitAsync("job2", Input);
        await _rig.RunShardsAsync(maxShards: 2, announce: false); // job1's two shards reported; their events were lost

        var result = await SweepAsync();
        await _rig.RunFinalizerAsync();

        Assert.Equal(["job1"], result.Rechecked);
        Assert.Equal(JobStatus.Completed, (await _rig.Jobs.GetAsync("job1"))!.Job.Status);
        Assert.Equal(JobStatus.InProgress, (await _rig.Jobs.GetAsync("job2"))!.Job.Status);
    }

    [Fact]
    public async Task Run_jobWithNoValidLine_isEndedByTheCheck()
    {
        await _rig.SubmitAsync("job1", "{bad\n{worse\n"); // in progress with zero shards: nothing will ever report

        Assert.Equal(["job1"], (await SweepAsync()).Rechecked);
        await _rig.RunFinalizerAsync();

        var job = (await _rig.Jobs.GetAsync("job1"))!.Job;
        Assert.Equal((JobStatus.Completed, new RequestCounts(2, 0, 2)), (job.Status, job.RequestCounts));
    }
}

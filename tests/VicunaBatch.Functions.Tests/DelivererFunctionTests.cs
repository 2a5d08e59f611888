using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Azure.Tests;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Functions.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class DelivererFunctionTests(AzuriteFixture azurite)
{
    private const string Input = "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n";

    /// <summary>A finished job with a webhook to the receiver: its event waits in the outbox.</summary>
    private static async Task FinishJobAsync(FunctionsRig rig, string url)
    {
        await rig.SubmitAsync("job1", Input, new WebhookSettings(url, ["batch.completed"]));
        await rig.RunShardsAsync();
        await rig.RunFinalizerAsync();
    }

    private static string SigningSecret(FunctionsRig rig) => rig.Services.GetRequiredService<FunctionsOptions>().SigningSecret;

    [Fact]
    public async Task Run_receiverFailsTheFirstAttempt_retriedAfterTheDelayAndDeliveredOnceSigned()
    {
        await using var rig = new FunctionsRig(azurite, new Dictionary<string, string?> { ["Webhooks:RetryDelays"] = "00:00:03, 00:00:03" });
        await using var receiver = await WebhookReceiver.StartAsync(503);
        await FinishJobAsync(rig, receiver.Url);

        Assert.Equal(1, await rig.RunDelivererAsync()); // 503: hidden for 3 s, the host's delete finds a changed pop receipt
        Assert.Equal(0, await rig.RunDelivererAsync()); // not visible yet
        await Task.Delay(TimeSpan.FromSeconds(3.5));
        Assert.Equal(1, await rig.RunDelivererAsync());
        Assert.Equal(0, await rig.Queues.WebhookDeliveries.CountAsync()); // delivered: deleted, not hidden

        Assert.Equal([503, 200], receiver.Received.Select(r => r.Status));
        var (_, headers, body) = receiver.Received.Last();
        Assert.Equal(WebhookVerifyResult.Valid, WebhookSigner.Verify(SigningSecret(rig), headers, body, rig.Time.GetUtcNow()));
        var evt = JsonDocument.Parse(body).RootElement;
        Assert.Equal(("batch.completed", "job1"), (evt.GetProperty("type").GetString(), evt.GetProperty("data").GetProperty("id").GetString()));
        var log = await new WebhookDeliveryLog(rig.Blobs).ReadAsync("job1");
        Assert.Equal([(1, WebhookAttemptOutcome.Retrying), (2, WebhookAttemptOutcome.Delivered)], log.Select(a => (a.Attempt, a.Outcome)));
    }

    [Fact]
    public async Task Run_everyAttemptFails_givesUpRecordsItAndDeadLetters()
    {
        await using var rig = new FunctionsRig(azurite, new Dictionary<string, string?> { ["Webhooks:RetryDelays"] = "00:00:00" });
        await using var receiver = await WebhookReceiver.StartAsync(500, 500, 500);
        await FinishJobAsync(rig, receiver.Url);

        await rig.RunDelivererAsync(); // attempt 1 fails, visible again at once; attempt 2 is the last

        Assert.Equal([500, 500], receiver.Received.Select(r => r.Status));
        var log = await new WebhookDeliveryLog(rig.Blobs).ReadAsync("job1");
        Assert.Equal([WebhookAttemptOutcome.Retrying, WebhookAttemptOutcome.GaveUp], log.Select(a => a.Outcome));
        var letter = Assert.Single(await rig.Queues.WebhookDeliveries.PeekDeadLettersAsync());
        Assert.StartsWith("webhook evt_", letter.Reason);
        Assert.Contains("gave up after 2 attempts: HTTP 500", letter.Reason);
        Assert.Equal(0, await rig.Queues.WebhookDeliveries.CountAsync());
    }

    [Fact]
    public async Task Run_notADelivery_goesToThePoisonQueueWithTheReason()
    {
        await using var rig = new FunctionsRig(azurite);
        await rig.Queues.WebhookDeliveries.SendAsync([new OutgoingMessage("junk-1", "{\"nope\":1}")]);

        await rig.RunDelivererAsync();

        var letter = Assert.Single(await rig.Queues.WebhookDeliveries.PeekDeadLettersAsync());
        Assert.Equal("junk-1", letter.MessageId);
        Assert.StartsWith("not a webhook delivery", letter.Reason);
    }

    [Fact]
    public void HostJson_queueTrigger_retriesMoreOftenThanTheDelivererAttemptsAndKeepsV1Paths()
    {
        var host = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "host.json"))).RootElement;
        var queues = host.GetProperty("extensions").GetProperty("queues");
        var defaultAttempts = 1 + new WebhookDelivererOptions { SigningSecret = "whsec_AAAA" }.RetryDelays.Count;

        Assert.Equal(FunctionsOptions.HostMaxDequeueCount, queues.GetProperty("maxDequeueCount").GetInt32());
        Assert.True(defaultAttempts < FunctionsOptions.HostMaxDequeueCount, $"{defaultAttempts} attempts");
        Assert.Equal("base64", queues.GetProperty("messageEncoding").GetString());
        Assert.Equal("", host.GetProperty("extensions").GetProperty("http").GetProperty("routePrefix").GetString());
    }
}

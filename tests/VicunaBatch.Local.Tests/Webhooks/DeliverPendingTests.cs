using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Local.Tests.Webhooks;

/// <summary><see cref="WebhookDeliverer.DeliverPendingAsync"/>: a command that runs once delivers what it can now and leaves the rest.</summary>
public sealed class DeliverPendingTests : IDisposable
{
    private readonly WebhookRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Fact]
    public async Task DeliverPendingAsync_receiverFailsTwice_waitsOutTheRetriesWithinItsTimeAndReturnsTheAttempts()
    {
        await using var receiver = new LoopbackReceiver(500, 500);
        await _rig.Enqueuer.EnqueueAsync(WebhookRig.CompletedJob(receiver.Url));

        var attempts = await _rig.Deliverer.DeliverPendingAsync(TimeSpan.FromSeconds(20));

        Assert.Equal([WebhookAttemptOutcome.Retrying, WebhookAttemptOutcome.Retrying, WebhookAttemptOutcome.Delivered], attempts.Select(a => a.Outcome));
        Assert.Equal(3, receiver.Requests.Count);
        Assert.Equal(0, await _rig.Outbox.CountAsync());
    }

    [Fact]
    public async Task DeliverPendingAsync_retryDueAfterItsTime_leftInTheOutbox()
    {
        await using var receiver = new LoopbackReceiver(500, 500);
        await _rig.Enqueuer.EnqueueAsync(WebhookRig.CompletedJob(receiver.Url));

        var attempts = await _rig.Deliverer.DeliverPendingAsync(TimeSpan.FromMilliseconds(100)); // the first retry is due in 300 ms

        Assert.Equal(WebhookAttemptOutcome.Retrying, Assert.Single(attempts).Outcome);
        Assert.Equal(1, await _rig.Outbox.CountAsync()); // for the next run, or a long-running deliverer
    }

    [Fact]
    public async Task DeliverPendingAsync_emptyOutbox_returnsAtOnceWithNoAttempts()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Empty(await _rig.Deliverer.DeliverPendingAsync(TimeSpan.FromSeconds(20)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"{clock.Elapsed}");
    }
}

using Azure.Storage.Queues;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Azure.Tests;

/// <summary><see cref="StorageWorkQueue"/> (the control plane) against a real Azurite queue service.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class StorageWorkQueueTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly string _name = azurite.UniqueName("queue");
    private StorageWorkQueue _queue = null!;

    public async Task InitializeAsync()
    {
        _queue = Queue(TimeSpan.FromSeconds(30));
        await _queue.CreateIfNotExistsAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private StorageWorkQueue Queue(TimeSpan lockDuration) => new(azurite.Queues(), _name, lockDuration, TimeProvider.System);

    private static OutgoingMessage Message(string id) => new(id, $$"""{"job_id":"{{id}}"}""");

    /// <summary>Receives until a message arrives (visibility is whole seconds on the service), at most <paramref name="within"/>.</summary>
    private async Task<IReadOnlyList<ReceivedMessage>> ReceiveWithinAsync(TimeSpan within, int max = 1)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            var received = await _queue.ReceiveAsync(max);
            if (received.Count > 0 || DateTime.UtcNow > deadline) return received;
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task SendAsync_thenReceive_returnsIdBodyAndFirstDelivery()
    {
        await _queue.SendAsync([Message("batch_1"), Message("batch_2")]);

        var received = await _queue.ReceiveAsync(10);

        Assert.Equal(["batch_1", "batch_2"], received.Select(m => m.MessageId).Order());
        Assert.All(received, m => Assert.Equal((1, $$"""{"job_id":"{{m.MessageId}}"}"""), (m.DeliveryCount, m.Body)));
        Assert.All(received, m => Assert.True(m.LockedUntil > DateTimeOffset.UtcNow + TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task ReceiveAsync_lockedMessage_invisibleToOthersUntilCompleted()
    {
        await _queue.SendAsync([Message("a")]);
        var message = Assert.Single(await _queue.ReceiveAsync(1));

        Assert.Empty(await Queue(TimeSpan.FromSeconds(30)).ReceiveAsync(1));
        await _queue.CompleteAsync(message);

        Assert.Equal(0, await _queue.CountAsync());
    }

    [Fact]
    public async Task AbandonAsync_noDelay_redeliveredWithHigherCount()
    {
        await _queue.SendAsync([Message("a")]);
        var first = Assert.Single(await _queue.ReceiveAsync(1));

        await _queue.AbandonAsync(first);
        var second = Assert.Single(await ReceiveWithinAsync(TimeSpan.FromSeconds(3)));

        Assert.Equal(("a", 2), (second.MessageId, second.DeliveryCount));
    }

    [Fact]
    public async Task AbandonAsync_withDelay_hiddenUntilTheDelayPasses()
    {
        await _queue.SendAsync([Message("a")]);
        var first = Assert.Single(await _queue.ReceiveAsync(1));

        await _queue.AbandonAsync(first, TimeSpan.FromSeconds(2));
        Assert.Empty(await _queue.ReceiveAsync(1));
        var started = DateTime.UtcNow;
        var second = Assert.Single(await ReceiveWithinAsync(TimeSpan.FromSeconds(6)));

        Assert.Equal(("a", 2), (second.MessageId, second.DeliveryCount));
        Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromSeconds(0.8), TimeSpan.FromSeconds(6));
    }

    [Fact]
    public async Task LockExpired_messageRedeliveredAndOldReceiptLosesTheLock()
    {
        var shortLocks = Queue(TimeSpan.FromSeconds(1));
        await shortLocks.SendAsync([Message("a")]);
        var first = Assert.Single(await shortLocks.ReceiveAsync(1));

        var second = Assert.Single(await ReceiveWithinAsync(TimeSpan.FromSeconds(5)));
        var e = await Assert.ThrowsAsync<WorkQueueException>(() => shortLocks.CompleteAsync(first));

        Assert.Equal((WorkQueueFailure.LockLost, "a"), (e.Reason, e.MessageId));
        Assert.Equal(2, second.DeliveryCount);
        await _queue.CompleteAsync(second);
        Assert.Equal(0, await _queue.CountAsync());
    }

    [Fact]
    public async Task RenewLockAsync_extendsTheLockAndSettlingStillWorks()
    {
        var shortLocks = Queue(TimeSpan.FromSeconds(2));
        await shortLocks.SendAsync([Message("a")]);
        var message = Assert.Single(await shortLocks.ReceiveAsync(1));

        await Task.Delay(1200);
        var until = await shortLocks.RenewLockAsync(message);
        await Task.Delay(1200); // past the first lock, within the renewed one

        Assert.True(until > message.LockedUntil);
        Assert.Empty(await Queue(TimeSpan.FromSeconds(2)).ReceiveAsync(1));
        await shortLocks.CompleteAsync(message); // with the receipt the renewal returned
        Assert.Equal(0, await _queue.CountAsync());
    }

    [Fact]
    public async Task CompleteAsync_twice_secondIsLockLost()
    {
        await _queue.SendAsync([Message("a")]);
        var message = Assert.Single(await _queue.ReceiveAsync(1));
        await _queue.CompleteAsync(message);

        var e = await Assert.ThrowsAsync<WorkQueueException>(() => _queue.CompleteAsync(message));

        Assert.Equal(WorkQueueFailure.LockLost, e.Reason);
    }

    [Fact]
    public async Task DeadLetterAsync_movesToPoisonQueueWithReason()
    {
        await _queue.SendAsync([Message("batch_9")]);
        var message = Assert.Single(await _queue.ReceiveAsync(1));

        await _queue.DeadLetterAsync(message, "webhook gave up after 8 attempts");

        var letter = Assert.Single(await _queue.PeekDeadLettersAsync());
        Assert.Equal(new StorageDeadLetter("batch_9", """{"job_id":"batch_9"}""", 1, "webhook gave up after 8 attempts"), letter);
        Assert.Equal(0, await _queue.CountAsync());
        Assert.Equal(_name + "-poison", _queue.PoisonQueueName);
    }

    [Fact]
    public async Task ReceiveAsync_messageWrittenAroundTheQueue_isItsOwnBody()
    {
        await azurite.Queues().GetQueueClient(_name).SendMessageAsync("plain text");

        var message = Assert.Single(await _queue.ReceiveAsync(1));

        Assert.Equal("plain text", message.Body);
        Assert.False(string.IsNullOrEmpty(message.MessageId));
    }

    [Fact]
    public async Task SendAsync_base64Encoding_isWhatTheFunctionsTriggerReads()
    {
        await _queue.SendAsync([Message("a")]);

        var raw = await azurite.Queues(QueueMessageEncoding.None).GetQueueClient(_name).PeekMessageAsync();

        var text = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(raw.Value.MessageText));
        Assert.Equal("""{"id":"a","body":"{\"job_id\":\"a\"}"}""", text);
    }

    [Fact]
    public async Task Calls_queueMissing_throwTransientUnavailable()
    {
        var missing = new StorageWorkQueue(azurite.Queues(), azurite.UniqueName("none"), TimeSpan.FromSeconds(30), TimeProvider.System);

        var e = await Assert.ThrowsAsync<WorkQueueException>(() => missing.SendAsync([Message("a")]));

        Assert.Equal(WorkQueueFailure.Unavailable, e.Reason);
        Assert.Contains("QueueNotFound", e.Message);
    }
}

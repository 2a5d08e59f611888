using VicunaBatch.Core.Ports;

namespace VicunaBatch.Local.Tests;

public sealed class SqliteWorkQueueTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly ManualTimeProvider _time = new(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000));

    private SqliteWorkQueue NewQueue(string name = "shards") => new(new SqliteWorkQueueOptions
    {
        DatabasePath = _folder.Combine("queue.db"), QueueName = name, LockDuration = TimeSpan.FromSeconds(30),
    }, _time);

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task ReceiveAsync_twoMessages_inSendOrderWithDeliveryCountOne()
    {
        var queue = NewQueue();
        await queue.SendAsync([new("m1", "one"), new("m2", "two")]);

        var received = await queue.ReceiveAsync(10);

        Assert.Equal([("m1", "one", 1), ("m2", "two", 1)], received.Select(m => (m.MessageId, m.Body, m.DeliveryCount)).ToArray());
        Assert.Equal(_time.GetUtcNow().AddSeconds(30), received[0].LockedUntil);
        Assert.Empty(await queue.ReceiveAsync(10));
    }

    [Fact]
    public async Task SendAsync_sameMessageIdTwice_queuedOnce()
    {
        var queue = NewQueue();

        await queue.SendAsync([new("m1", "one")]);
        await queue.SendAsync([new("m1", "again")]);

        Assert.Equal(1, await queue.CountAsync());
        Assert.Equal("one", (await queue.ReceiveAsync(10)).Single().Body);
    }

    [Fact]
    public async Task ReceiveAsync_afterLockExpiry_redeliversAndOldTokenCannotComplete()
    {
        var queue = NewQueue();
        await queue.SendAsync([new("m1", "one")]);
        var first = (await queue.ReceiveAsync(1)).Single();

        _time.Advance(TimeSpan.FromSeconds(29));
        Assert.Empty(await queue.ReceiveAsync(1));
        _time.Advance(TimeSpan.FromSeconds(1));
        var second = (await queue.ReceiveAsync(1)).Single();

        Assert.Equal(("m1", 2), (second.MessageId, second.DeliveryCount));
        Assert.NotEqual(first.LockToken, second.LockToken);
        var e = await Assert.ThrowsAsync<WorkQueueException>(() => queue.CompleteAsync(first));
        Assert.Equal(WorkQueueFailure.LockLost, e.Reason);
        Assert.Contains("m1", e.Message);
        await queue.CompleteAsync(second);
        Assert.Equal(0, await queue.CountAsync());
    }

    [Fact]
    public async Task CompleteAsync_expiredLockNotYetRedelivered_throwsLockLost()
    {
        var queue = NewQueue();
        await queue.SendAsync([new("m1", "one")]);
        var message = (await queue.ReceiveAsync(1)).Single();
        _time.Advance(TimeSpan.FromSeconds(31));

        var e = await Assert.ThrowsAsync<WorkQueueException>(() => queue.CompleteAsync(message));

        Assert.Equal(WorkQueueFailure.LockLost, e.Reason);
        Assert.False(e.IsTransient);
    }

    [Fact]
    public async Task AbandonAsync_lockedMessage_visibleAgainAtOnceWithHigherDeliveryCount()
    {
        var queue = NewQueue();
        await queue.SendAsync([new("m1", "one")]);
        var message = (await queue.ReceiveAsync(1)).Single();

        await queue.AbandonAsync(message);
        var again = (await queue.ReceiveAsync(1)).Single();

        Assert.Equal(2, again.DeliveryCount);
        await Assert.ThrowsAsync<WorkQueueException>(() => queue.CompleteAsync(message));
    }

    [Fact]
    public async Task RenewLockAsync_beforeExpiry_extendsLock()
    {
        var queue = NewQueue();
        await queue.SendAsync([new("m1", "one")]);
        var message = (await queue.ReceiveAsync(1)).Single();
        _time.Advance(TimeSpan.FromSeconds(20));

        var until = await queue.RenewLockAsync(message);
        _time.Advance(TimeSpan.FromSeconds(20));

        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_050), until);
        Assert.Empty(await queue.ReceiveAsync(1));
        await queue.CompleteAsync(message);
    }

    [Fact]
    public async Task RenewLockAsync_afterExpiry_throwsLockLost()
    {
        var queue = NewQueue();
        await queue.SendAsync([new("m1", "one")]);
        var message = (await queue.ReceiveAsync(1)).Single();
        _time.Advance(TimeSpan.FromSeconds(30));

        var e = await Assert.ThrowsAsync<WorkQueueException>(() => queue.RenewLockAsync(message));

        Assert.Equal(WorkQueueFailure.LockLost, e.Reason);
    }

    [Fact]
    public async Task DeadLetterAsync_lockedMessage_movesToDeadLettersWithReason()
    {
        var queue = NewQueue();
        await queue.SendAsync([new("m1", "one")]);
        for (int i = 0; i < 3; i++) await queue.AbandonAsync((await queue.ReceiveAsync(1)).Single());
        var message = (await queue.ReceiveAsync(1)).Single();

        await queue.DeadLetterAsync(message, "too many deliveries");

        Assert.Equal(0, await queue.CountAsync());
        Assert.Empty(await queue.ReceiveAsync(1));
        Assert.Equal(new DeadLetter("m1", "one", 4, "too many deliveries", _time.GetUtcNow()), (await queue.ReadDeadLettersAsync()).Single());
    }

    [Fact]
    public async Task ReceiveAsync_twoQueuesInOneDatabase_areSeparate()
    {
        await NewQueue("a").SendAsync([new("m1", "one")]);

        Assert.Empty(await NewQueue("b").ReceiveAsync(1));
        Assert.Single(await NewQueue("a").ReceiveAsync(1));
    }

    [Fact]
    public async Task ReceiveAsync_concurrentReceivers_neverGetSameMessage()
    {
        var sender = NewQueue();
        await sender.SendAsync(Enumerable.Range(0, 200).Select(i => new OutgoingMessage($"m{i}", $"{i}")).ToList());
        var receivers = Enumerable.Range(0, 4).Select(_ => NewQueue()).ToList();

        var batches = await Task.WhenAll(receivers.Select(async queue =>
        {
            var mine = new List<string>();
            IReadOnlyList<ReceivedMessage> got;
            while ((got = await queue.ReceiveAsync(3)).Count > 0) mine.AddRange(got.Select(m => m.MessageId));
            return mine;
        }));

        var all = batches.SelectMany(b => b).ToList();
        Assert.Equal(200, all.Count);
        Assert.Equal(200, all.Distinct().Count());
    }
}

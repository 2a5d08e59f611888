using Xunit;

namespace VicunaBatch.Contracts;

public abstract partial class WorkQueueContract
{
    [Fact]
    public async Task ReceiveAsync_sentMessages_inSendOrderWithDeliveryCountOneLockedForTheLockDuration()
    {
        var queue = Open();
        await queue.SendAsync([new("m1", "one"), new("m2", "two")]);
        await queue.SendAsync([new("m3", "three")]);

        var before = Now;
        var received = await queue.ReceiveAsync(10);
        var after = Now;

        var seen = received.Select(Seen).ToList();
        Assert.Equal([("m1", "one", 1), ("m2", "two", 1), ("m3", "three", 1)], KeepsSendOrder ? seen : [.. seen.Order()]);
        Assert.All(received, m => AssertLockedUntil(m.LockedUntil, before, after));
        Assert.Equal(3, received.Select(m => m.LockToken).Distinct().Count());
        Assert.Empty(await queue.ReceiveAsync(10));
    }

    [Fact]
    public async Task ReceiveAsync_lockedMessage_invisibleToEveryReceiverUntilItsLockExpiresThenRedeliveredWithDeliveryCountTwo()
    {
        var (queue, other) = (Open(), Open());
        await queue.SendAsync([new("m1", "one")]);
        var first = Assert.Single(await queue.ReceiveAsync(1));

        Assert.Empty(await other.ReceiveAsync(1));
        await PassAsync(Held);
        Assert.Empty(await other.ReceiveAsync(1));
        Assert.Empty(await queue.ReceiveAsync(1));
        await PassAsync(Expired - Held);
        var second = Assert.Single(await queue.ReceiveAsync(1));

        Assert.Equal(("m1", "one", 2), Seen(second));
        Assert.NotEqual(first.LockToken, second.LockToken);
        await AssertLockLostAsync("m1", () => queue.CompleteAsync(first)); // the earlier delivery's lock, on the same client
        await queue.CompleteAsync(second);
    }

    [Fact]
    public async Task AbandonAsync_heldLock_redeliveredAtOnceWithDeliveryCountTwoAndTheEarlierLockIsLost()
    {
        var queue = Open();
        await queue.SendAsync([new("m1", "one")]);
        var first = Assert.Single(await queue.ReceiveAsync(1));

        await queue.AbandonAsync(first);
        var second = Assert.Single(await queue.ReceiveAsync(1));

        Assert.Equal(("m1", "one", 2), Seen(second));
        await AssertLockLostAsync("m1", () => queue.CompleteAsync(first));
        await queue.CompleteAsync(second);
    }

    [Fact]
    public async Task SendAsync_messageIdStillQueued_ignoredWhereTheBackendDetectsDuplicates()
    {
        var queue = Open();
        await queue.SendAsync([new("m1", "one")]);
        await queue.SendAsync([new("m1", "again"), new("m2", "two")]);

        var received = await queue.ReceiveAsync(10);
        await queue.SendAsync([new("m1", "while locked")]);
        var later = await queue.ReceiveAsync(10);

        var seen = received.Select(m => (m.MessageId, m.Body)).ToList();
        if (DetectsDuplicates)
        {
            Assert.Equal([("m1", "one"), ("m2", "two")], KeepsSendOrder ? seen : [.. seen.Order()]);
            Assert.Empty(later);
        }
        else
        {
            Assert.Equal([("m1", "again"), ("m1", "one"), ("m2", "two")], [.. seen.Order()]);
            Assert.Equal(("m1", "while locked", 1), Seen(Assert.Single(later)));
        }
    }

    [Fact]
    public async Task CompleteAsync_heldLock_removesTheMessageForGood()
    {
        var (queue, other) = (Open(), Open());
        await queue.SendAsync([new("m1", "one"), new("m2", "two")]);
        var received = await queue.ReceiveAsync(10);

        await queue.CompleteAsync(received.Single(m => m.MessageId == "m1"));
        await PassAsync(Expired);

        Assert.Equal(("m2", "two", 2), Seen(Assert.Single(await other.ReceiveAsync(10)))); // m2's lock did run out
    }

    [Fact]
    public async Task CompleteAsync_twice_secondThrowsLockLost()
    {
        var queue = Open();
        await queue.SendAsync([new("m1", "one")]);
        var message = Assert.Single(await queue.ReceiveAsync(1));
        await queue.CompleteAsync(message);

        await AssertLockLostAsync("m1", () => queue.CompleteAsync(message));
    }

    [Fact]
    public async Task AbandonAsyncAndRenewLockAsync_completedMessage_throwLockLost()
    {
        var queue = Open();
        await queue.SendAsync([new("m1", "one")]);
        var message = Assert.Single(await queue.ReceiveAsync(1));
        await queue.CompleteAsync(message);

        await AssertLockLostAsync("m1", () => queue.AbandonAsync(message));
        await AssertLockLostAsync("m1", () => queue.RenewLockAsync(message));
    }

    [Fact]
    public async Task DeadLetterAsync_completedMessage_throwsLockLostAndRecordsNoDeadLetter()
    {
        var queue = Open();
        await queue.SendAsync([new("m1", "one")]);
        var message = Assert.Single(await queue.ReceiveAsync(1));
        await queue.CompleteAsync(message);

        await AssertLockLostAsync("m1", () => queue.DeadLetterAsync(message, "too late"));

        Assert.Empty(await ReadDeadLettersAsync());
    }

    [Fact]
    public async Task CompleteAsync_lockExpired_lockLostWhereLocksExpire()
    {
        var (queue, other) = (Open(), Open());
        await queue.SendAsync([new("m1", "one")]);
        var message = Assert.Single(await queue.ReceiveAsync(1));
        await PassAsync(Expired);

        if (LockLostWhenItExpires)
        {
            await AssertLockLostAsync("m1", () => queue.CompleteAsync(message));
            Assert.Equal(("m1", "one", 2), Seen(Assert.Single(await other.ReceiveAsync(1))));
        }
        else
        {
            await queue.CompleteAsync(message); // nobody took the message since: its lock still holds
            Assert.Empty(await other.ReceiveAsync(1));
        }
    }

    [Fact]
    public async Task RenewLockAsync_lockExpired_lockLostWhereLocksExpire()
    {
        var (queue, other) = (Open(), Open());
        await queue.SendAsync([new("m1", "one")]);
        var message = Assert.Single(await queue.ReceiveAsync(1));
        await PassAsync(Expired);

        if (LockLostWhenItExpires)
        {
            await AssertLockLostAsync("m1", () => queue.RenewLockAsync(message));
            Assert.Equal(("m1", "one", 2), Seen(Assert.Single(await other.ReceiveAsync(1))));
        }
        else
        {
            var before = Now;
            var until = await queue.RenewLockAsync(message); // nobody took the message since: its lock still holds
            AssertLockedUntil(until, before, Now);
            Assert.Empty(await other.ReceiveAsync(1));
            await queue.CompleteAsync(message);
        }
    }

    [Fact]
    public async Task RenewLockAsync_heldLock_keepsTheMessageLockedPastItsFirstExpiry()
    {
        var (queue, other) = (Open(), Open());
        await queue.SendAsync([new("m1", "one")]);
        var message = Assert.Single(await queue.ReceiveAsync(1));
        await PassAsync(Held);

        var before = Now;
        var until = await queue.RenewLockAsync(message);
        var after = Now;
        await PassAsync(Expired - Held);

        AssertLockedUntil(until, before, after);
        Assert.Empty(await other.ReceiveAsync(1));
        Assert.Empty(await queue.ReceiveAsync(1));
        await queue.CompleteAsync(message); // with the lock as the renewal left it
    }

    [Fact]
    public async Task AbandonAsync_withDelay_hiddenForTheDelayThenRedeliveredWithDeliveryCountTwo()
    {
        var (queue, other) = (Open(), Open());
        await queue.SendAsync([new("m1", "one")]);
        var first = Assert.Single(await queue.ReceiveAsync(1));
        var delay = 2 * LockDuration; // longer than the lock: not a lock left to run out

        if (!DelaysRedelivery)
        {
            await Assert.ThrowsAsync<NotSupportedException>(() => queue.AbandonAsync(first, delay));
            Assert.Empty(await other.ReceiveAsync(1)); // still locked: nothing was released
            await queue.AbandonAsync(first, TimeSpan.Zero);
            Assert.Equal(("m1", "one", 2), Seen(Assert.Single(await other.ReceiveAsync(1))));
            return;
        }
        await queue.AbandonAsync(first, delay);
        Assert.Empty(await other.ReceiveAsync(1));
        await PassAsync(delay - Slack - Tick);
        Assert.Empty(await other.ReceiveAsync(1));
        await PassAsync(2 * Slack + Tick);
        var second = Assert.Single(await other.ReceiveAsync(1));

        Assert.Equal(("m1", "one", 2), Seen(second));
        await AssertLockLostAsync("m1", () => queue.CompleteAsync(first));
        await other.CompleteAsync(second);
    }

    [Fact]
    public async Task DeadLetterAsync_heldLock_removesTheMessageAndRecordsItsReasonAndDeliveryCount()
    {
        var (queue, other) = (Open(), Open());
        await queue.SendAsync([new("m1", "one"), new("m2", "two")]);
        foreach (var message in await queue.ReceiveAsync(10)) await queue.AbandonAsync(message);
        var received = await queue.ReceiveAsync(10);

        await queue.DeadLetterAsync(received.Single(m => m.MessageId == "m1"), "gave up after 2 deliveries");
        await PassAsync(Expired);

        Assert.Equal(("m2", "two", 3), Seen(Assert.Single(await other.ReceiveAsync(10)))); // m2's lock did run out
        Assert.Equal([new DeadLetterSeen("m1", "gave up after 2 deliveries", 2)], await ReadDeadLettersAsync());
    }

    [Fact]
    public async Task ReceiveAsync_nothingVisible_returnsEmptyWithoutWaitingPastTheReceiveWait()
    {
        var queue = Open();

        Assert.Empty(await queue.ReceiveAsync(5).WaitAsync(ReceiveWait + CallBound));
        await queue.SendAsync([new("m1", "one")]);
        Assert.Single(await queue.ReceiveAsync(5).WaitAsync(ReceiveWait + CallBound));

        Assert.Empty(await queue.ReceiveAsync(5).WaitAsync(ReceiveWait + CallBound)); // its only message is locked
    }

    [Fact]
    public async Task WaitForMessagesAsync_returnsWithinItsMaxWaitAndClaimsNothing()
    {
        var (queue, other) = (Open(), Open());
        var maxWait = TimeSpan.FromMilliseconds(100);
        Assert.Empty(await queue.ReceiveAsync(1));

        await queue.WaitForMessagesAsync(maxWait).WaitAsync(maxWait + CallBound); // nothing comes
        await other.SendAsync([new("m1", "one")]);
        await queue.WaitForMessagesAsync(maxWait).WaitAsync(maxWait + CallBound); // something came

        Assert.Equal(("m1", "one", 1), Seen(Assert.Single(await other.ReceiveAsync(1))));
    }
}

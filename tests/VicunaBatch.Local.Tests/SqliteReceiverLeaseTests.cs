namespace VicunaBatch.Local.Tests;

/// <summary>
/// The data folder's receiver leases (<see cref="ReceiverLease"/>): a lock whose receiver is gone is released at the next
/// receive, a live receiver's lock is not, and receivers in this process wake as soon as a message arrives. Each lease is
/// a file lock, so two leases in one process stand for two processes.
/// </summary>
public sealed class SqliteReceiverLeaseTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly ManualTimeProvider _time = new(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000));

    public void Dispose() => _folder.Dispose();

    private SqliteWorkQueue Queue(ReceiverLease? lease) => new(new SqliteWorkQueueOptions
    {
        DatabasePath = _folder.Combine("queue.db"), LockDuration = TimeSpan.FromMinutes(10), Lease = lease,
    }, _time);

    private string Receivers => _folder.Combine("receivers");

    [Fact]
    public async Task ReceiveAsync_lockOfAReceiverThatIsGone_releasedAtOnceWithItsDeliveryCounted()
    {
        var gone = ReceiverLease.Take(Receivers);
        var first = Queue(gone);
        await first.SendAsync([new("m1", "one")]);
        Assert.Single(await first.ReceiveAsync(1));
        gone.Dispose(); // its process died: the lock file is no longer held

        using var live = ReceiverLease.Take(Receivers);
        var again = Assert.Single(await Queue(live).ReceiveAsync(1));

        Assert.Equal(("m1", 2), (again.MessageId, again.DeliveryCount)); // ten minutes before the lock would have expired
    }

    [Fact]
    public async Task ReceiveAsync_lockOfALiveReceiver_keptUntilItExpires()
    {
        using var holder = ReceiverLease.Take(Receivers);
        var first = Queue(holder);
        await first.SendAsync([new("m1", "one")]);
        Assert.Single(await first.ReceiveAsync(1));

        using var other = ReceiverLease.Take(Receivers);
        Assert.Empty(await Queue(other).ReceiveAsync(1));
        _time.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(1));
        Assert.Equal(2, Assert.Single(await Queue(other).ReceiveAsync(1)).DeliveryCount);
    }

    [Fact]
    public async Task ReceiveAsync_queueWithoutLease_leavesEveryLockToExpire()
    {
        var gone = ReceiverLease.Take(Receivers);
        var first = Queue(gone);
        await first.SendAsync([new("m1", "one")]);
        Assert.Single(await first.ReceiveAsync(1));
        gone.Dispose();

        Assert.Empty(await Queue(lease: null).ReceiveAsync(1));
    }

    [Fact]
    public void IsHeld_leaseHeld_trueAndAfterDispose_falseAndItsFileIsGone()
    {
        var lease = ReceiverLease.Take(Receivers);
        Assert.True(ReceiverLease.IsHeld(Receivers, lease.Id));
        lease.Dispose();
        Assert.False(ReceiverLease.IsHeld(Receivers, lease.Id));
        Assert.Empty(Directory.GetFiles(Receivers));
        Assert.False(ReceiverLease.IsHeld(Receivers, "../not-an-id"));
    }

    [Fact]
    public async Task WaitForMessagesAsync_wakesWhenThisProcessSendsAndReturnsAtOnceAfterASendItMissed()
    {
        var receiver = Queue(null);
        Assert.Empty(await receiver.ReceiveAsync(1));
        var waiting = receiver.WaitForMessagesAsync(TimeSpan.FromMinutes(5)); // the manual clock never gets there
        Assert.False(waiting.IsCompleted);

        await Queue(null).SendAsync([new("m1", "one")]);
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal("m1", Assert.Single(await receiver.ReceiveAsync(1)).MessageId);
        await Queue(null).SendAsync([new("m2", "two")]); // sent between a receive and the wait that follows it: no wait at all
        await receiver.WaitForMessagesAsync(TimeSpan.FromMinutes(5)).WaitAsync(TimeSpan.FromSeconds(10));
    }
}

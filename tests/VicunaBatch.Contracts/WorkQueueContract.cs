using VicunaBatch.Core.Ports;
using Xunit;

namespace VicunaBatch.Contracts;

/// <summary>A dead letter as its backend recorded it.</summary>
public sealed record DeadLetterSeen(string MessageId, string Reason, int DeliveryCount);

/// <summary>
/// What every <see cref="IWorkQueue"/> backend must do, written once (the tests are in WorkQueueContract.Tests.cs). A
/// derived class per backend only says how to open a client of a fresh queue, how the backend's time passes, how to read
/// its dead letters and which platform differences below it has. Run against:
/// <list type="bullet">
/// <item>SQLite (<c>VicunaBatch.Local.Tests</c>): a fresh database per test, time injected and moved by hand;</item>
/// <item>an Azure Storage queue (<c>VicunaBatch.Azure.Tests</c>) on a real Azurite: the service keeps time, so these
/// tests wait real seconds around a 3-second lock, one <see cref="Slack"/> on each side of every instant they check;</item>
/// <item>Azure Service Bus (<c>VicunaBatch.Azure.Tests</c>) through the SDK's own test seams, not an emulator (the Service
/// Bus emulator needs Docker, which does not run here): <c>FakeServiceBus</c> subclasses <c>ServiceBusSender</c> and
/// <c>ServiceBusReceiver</c> and builds received messages with <c>ServiceBusModelFactory</c>, with its own clock.</item>
/// </list>
/// <para>Platform differences, each a capability the derived class declares and each test asserts either way (none is
/// skipped); <see cref="IWorkQueue"/> documents the same:</para>
/// <list type="bullet">
/// <item><see cref="KeepsSendOrder"/>: a Storage queue delivers in no guaranteed order (it is best effort);</item>
/// <item><see cref="DetectsDuplicates"/>: a Storage queue has no duplicate detection, every send is queued;</item>
/// <item><see cref="DelaysRedelivery"/>: Service Bus cannot abandon with a delay and keep the message id, so a delay
/// other than zero throws <see cref="NotSupportedException"/> and leaves the message locked;</item>
/// <item><see cref="LockLostWhenItExpires"/>: a Storage queue's lock is its pop receipt, which the service rejects only
/// once the message was received again, updated or deleted: after the lock duration, settling or renewing still
/// succeeds while no other receiver has taken the message;</item>
/// <item><see cref="ReceiveWait"/>: a Service Bus receive waits up to its ReceiveWaitTime for a first message (AMQP
/// has no receive that answers at once).</item>
/// </list>
/// Everywhere: once another delivery of the message was received, settling with the earlier lock is
/// <see cref="WorkQueueFailure.LockLost"/>.
/// </summary>
public abstract partial class WorkQueueContract : IAsyncLifetime
{
    /// <summary>The lock duration of the queues <see cref="Open"/> makes (on Service Bus, the queue entity's).</summary>
    protected abstract TimeSpan LockDuration { get; }

    /// <summary>A new client of this test's queue, which is empty when the test starts. Each call is another receiver,
    /// as another process would be.</summary>
    protected abstract IWorkQueue Open();

    /// <summary>The backend's time: its injected clock, or the wall clock where the service keeps time.</summary>
    protected abstract DateTimeOffset Now { get; }

    /// <summary>Lets <paramref name="time"/> pass for the backend: moves its injected clock, or waits it out.</summary>
    protected abstract Task PassAsync(TimeSpan time);

    /// <summary>The dead letters of this test's queue, oldest first.</summary>
    protected abstract Task<IReadOnlyList<DeadLetterSeen>> ReadDeadLettersAsync();

    /// <summary>Zero where time is injected: every time is then checked exactly. Where the service keeps time, the margin
    /// kept on each side of an instant the tests check, which also covers the precision of the times it reports
    /// (Storage: whole seconds).</summary>
    protected virtual TimeSpan Slack => TimeSpan.Zero;

    /// <summary>Receive returns messages in the order they were sent. Default true.</summary>
    protected virtual bool KeepsSendOrder => true;

    /// <summary>Sending a message id that is still queued (waiting or locked) is ignored. Default true.</summary>
    protected virtual bool DetectsDuplicates => true;

    /// <summary>Abandon with a delay hides the message for that delay; false: it throws
    /// <see cref="NotSupportedException"/> and only a zero delay works. Default true.</summary>
    protected virtual bool DelaysRedelivery => true;

    /// <summary>A lock is lost when its duration passes: settling or renewing after that is
    /// <see cref="WorkQueueFailure.LockLost"/>. False: only another delivery (or a settle) ends it. Default true.</summary>
    protected virtual bool LockLostWhenItExpires => true;

    /// <summary>How long a receive may wait for a first message when none is visible. Default zero: it answers at once.</summary>
    protected virtual TimeSpan ReceiveWait => TimeSpan.Zero;

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual Task DisposeAsync() => Task.CompletedTask;

    /// <summary>The finest time a queue records (milliseconds).</summary>
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);

    /// <summary>A call that does not wait answers well within this, even on a loaded machine.</summary>
    private static readonly TimeSpan CallBound = TimeSpan.FromSeconds(5);

    /// <summary>From a receive, the last instant its lock surely still holds.</summary>
    private TimeSpan Held => LockDuration - Slack - Tick;

    /// <summary>From a receive, the first instant its lock surely has run out.</summary>
    private TimeSpan Expired => LockDuration + Slack;

    private static async Task AssertLockLostAsync(string messageId, Func<Task> settle)
    {
        var e = await Assert.ThrowsAsync<WorkQueueException>(settle);
        Assert.Equal((WorkQueueFailure.LockLost, messageId, false), (e.Reason, e.MessageId, e.IsTransient));
    }

    /// <summary>A lock taken or renewed between <paramref name="before"/> and <paramref name="after"/> runs until then plus
    /// the lock duration (exactly, where time is injected).</summary>
    private void AssertLockedUntil(DateTimeOffset lockedUntil, DateTimeOffset before, DateTimeOffset after) =>
        Assert.InRange(lockedUntil, before + LockDuration - Slack, after + LockDuration);

    private static (string Id, string Body, int DeliveryCount) Seen(ReceivedMessage message) => (message.MessageId, message.Body, message.DeliveryCount);
}

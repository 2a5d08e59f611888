using VicunaBatch.Contracts;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Azure.Tests;

/// <summary>
/// The work-queue contract on <see cref="ServiceBusWorkQueue"/> through the SDK's own test seams, not an emulator (the
/// Service Bus emulator needs Docker, which does not run here): <see cref="FakeServiceBus"/> subclasses the SDK's sender
/// and receiver and builds received messages with <c>ServiceBusModelFactory</c>; its clock is the test's.
/// </summary>
public sealed class ServiceBusWorkQueueContractTests : WorkQueueContract
{
    private static readonly TimeSpan ReceiveWaitTime = TimeSpan.FromMilliseconds(50);
    private readonly FakeServiceBus _bus = new(TimeSpan.FromMinutes(5));
    private readonly List<ServiceBusWorkQueue> _opened = [];

    protected override TimeSpan LockDuration => _bus.LockDuration;

    protected override IWorkQueue Open()
    {
        var queue = new ServiceBusWorkQueue(_bus.NewSender, _bus.NewReceiver, ReceiveWaitTime, _bus.Clock);
        _opened.Add(queue);
        return queue;
    }

    protected override DateTimeOffset Now => _bus.Now;

    protected override Task PassAsync(TimeSpan time)
    {
        _bus.Now += time;
        return Task.CompletedTask;
    }

    protected override Task<IReadOnlyList<DeadLetterSeen>> ReadDeadLettersAsync() => Task.FromResult<IReadOnlyList<DeadLetterSeen>>(
        _bus.DeadLetters.Select(d => new DeadLetterSeen(d.MessageId, d.Reason, d.DeliveryCount)).ToList());

    /// <summary>Service Bus has no delayed redelivery that keeps the message id.</summary>
    protected override bool DelaysRedelivery => false;

    /// <summary>A receive waits up to the receiver's ReceiveWaitTime for a first message.</summary>
    protected override TimeSpan ReceiveWait => ReceiveWaitTime;

    public override async Task DisposeAsync()
    {
        foreach (var queue in _opened) await queue.DisposeAsync();
    }
}

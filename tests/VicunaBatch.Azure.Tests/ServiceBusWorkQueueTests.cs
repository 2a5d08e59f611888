using Azure.Messaging.ServiceBus;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Azure.Tests;

/// <summary>
/// What only <see cref="ServiceBusWorkQueue"/> does; what every queue does is the work-queue contract
/// (<see cref="ServiceBusWorkQueueContractTests"/>). Through the SDK's test support, not an emulator (the Service Bus
/// emulator needs Docker, which this machine does not run): <see cref="FakeServiceBus"/> subclasses
/// <see cref="ServiceBusSender"/> and <see cref="ServiceBusReceiver"/>, overrides their virtual members, and builds
/// received messages with <see cref="ServiceBusModelFactory"/>. Covered here: claim-check messages with the shard id as
/// MessageId, batching, the messages held, dead-letter reason and description, transient failures, a send-only host.
/// </summary>
public sealed class ServiceBusWorkQueueTests
{
    private readonly FakeServiceBus _bus = new(TimeSpan.FromMinutes(5));

    private ServiceBusWorkQueue Queue() => new(_bus.NewSender, _bus.NewReceiver, TimeSpan.FromSeconds(1), _bus.Clock);

    private static Shard Shard(int index, string jobId = "batch_1") => new()
    {
        JobId = jobId, ShardIndex = index, InputBlob = "files/file-1/content.jsonl", Format = InputFormat.Jsonl,
        FirstLine = 1 + 64 * index, LineCount = 64, ByteOffset = 1000L * index, ByteLength = 1000, NumRequests = 64,
    };

    private static OutgoingMessage Message(Shard shard) => new(shard.MessageId, shard.ToJson());

    [Fact]
    public async Task SendAsync_shards_areClaimChecksWithTheShardIdAsMessageId()
    {
        await Queue().SendAsync([Message(Shard(0)), Message(Shard(1))]);

        Assert.Equal(["batch_1:0", "batch_1:1"], _bus.Sent.Select(m => m.MessageId));
        Assert.All(_bus.Sent, m => Assert.Equal("application/json", m.ContentType));
        var sent = VicunaBatch.Core.Formats.Shard.FromJson(_bus.Sent[1].Body.ToString());
        Assert.Equal(Shard(1), sent with { SkipLines = Shard(1).SkipLines });
        Assert.True(_bus.Sent[1].Body.ToMemory().Length < 400); // the claim check, not the input lines
    }

    [Fact]
    public async Task SendAsync_moreThanABatchHolds_sendsSeveralBatchesInOrder()
    {
        var bus = new FakeServiceBus(TimeSpan.FromMinutes(5), maxBatchBytes: 1500);
        var queue = new ServiceBusWorkQueue(bus.NewSender, bus.NewReceiver, TimeSpan.FromSeconds(1), bus.Clock);

        await queue.SendAsync(Enumerable.Range(0, 10).Select(i => Message(Shard(i))).ToList());

        Assert.True(bus.BatchSizes.Count > 1, $"batches: {string.Join(",", bus.BatchSizes)}");
        Assert.Equal(10, bus.BatchSizes.Sum());
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"batch_1:{i}"), bus.Sent.Select(m => m.MessageId));
    }

    [Fact]
    public async Task SendAsync_messageLargerThanABatch_throwsArgumentException()
    {
        var bus = new FakeServiceBus(TimeSpan.FromMinutes(5), maxBatchBytes: 100);
        var queue = new ServiceBusWorkQueue(bus.NewSender, bus.NewReceiver, TimeSpan.FromSeconds(1), bus.Clock);

        var e = await Assert.ThrowsAsync<ArgumentException>(() => queue.SendAsync([Message(Shard(0))]));

        Assert.Contains("batch_1:0", e.Message);
        Assert.Empty(bus.Sent);
    }

    [Fact]
    public async Task NumHeld_countsReceivedMessagesUntilSettledOrTheirLockIsLost()
    {
        var queue = Queue();
        await queue.SendAsync([Message(Shard(0)), Message(Shard(1))]);
        var received = await queue.ReceiveAsync(8);
        Assert.Equal(2, queue.NumHeld);

        await queue.CompleteAsync(received[0]);
        Assert.Equal(1, queue.NumHeld);
        _bus.Now += TimeSpan.FromMinutes(6);
        var e = await Assert.ThrowsAsync<WorkQueueException>(() => queue.CompleteAsync(received[1]));

        Assert.Equal(ServiceBusFailureReason.MessageLockLost, Assert.IsType<ServiceBusException>(e.InnerException).Reason);
        Assert.Equal(0, queue.NumHeld);
    }

    [Fact]
    public async Task DeadLetterAsync_movesWithReasonAndDescription()
    {
        var queue = Queue();
        await queue.SendAsync([Message(Shard(0))]);
        var message = Assert.Single(await queue.ReceiveAsync(1));
        var reason = "delivered 6 times, more than MaxDeliveries (5) " + new string('x', 2000);

        await queue.DeadLetterAsync(message, reason);

        var letter = Assert.Single(_bus.DeadLetters);
        Assert.Equal(("batch_1:0", reason[..1024], reason, 1), letter);
        Assert.Equal(0, _bus.NumActive);
    }

    [Fact]
    public async Task Calls_namespaceBusy_throwTransientUnavailable()
    {
        var queue = Queue();
        _bus.NextFailure = new ServiceBusException(isTransient: true, "The server is busy.", "work", ServiceBusFailureReason.ServiceBusy);

        var e = await Assert.ThrowsAsync<WorkQueueException>(() => queue.ReceiveAsync(1));

        Assert.Equal(WorkQueueFailure.Unavailable, e.Reason);
        Assert.True(e.IsTransient);
        Assert.Contains("ServiceBusy", e.Message);
    }

    [Fact]
    public async Task SendOnlyHost_neverCreatesAReceiver()
    {
        int numReceivers = 0;
        var queue = new ServiceBusWorkQueue(_bus.NewSender, () => { numReceivers++; return _bus.NewReceiver(); }, TimeSpan.FromSeconds(1), _bus.Clock);

        await queue.SendAsync([Message(Shard(0))]);
        await queue.DisposeAsync();

        Assert.Equal(0, numReceivers);
    }
}

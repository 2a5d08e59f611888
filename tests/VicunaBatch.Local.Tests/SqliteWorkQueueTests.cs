using VicunaBatch.Core.Ports;

namespace VicunaBatch.Local.Tests;

/// <summary>
/// What only <see cref="SqliteWorkQueue"/> does; what every queue does is the work-queue contract
/// (<see cref="SqliteWorkQueueContractTests"/>).
/// </summary>
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
    public async Task CountAsync_waitingAndLockedMessages_countedUntilSettled()
    {
        var queue = NewQueue();
        await queue.SendAsync([new("m1", "one"), new("m2", "two"), new("m1", "again")]);
        var message = (await queue.ReceiveAsync(1)).Single();

        Assert.Equal(2, await queue.CountAsync());
        await queue.CompleteAsync(message);
        Assert.Equal(1, await queue.CountAsync());
    }

    [Fact]
    public async Task ReadDeadLettersAsync_deadLetter_keepsBodyDeliveryCountReasonAndTime()
    {
        var queue = NewQueue();
        await queue.SendAsync([new("m1", "one")]);
        for (int i = 0; i < 3; i++) await queue.AbandonAsync((await queue.ReceiveAsync(1)).Single());
        var message = (await queue.ReceiveAsync(1)).Single();
        _time.Advance(TimeSpan.FromSeconds(5));

        await queue.DeadLetterAsync(message, "too many deliveries");

        Assert.Equal(new DeadLetter("m1", "one", 4, "too many deliveries", _time.GetUtcNow()), (await queue.ReadDeadLettersAsync()).Single());
        Assert.Equal(0, await queue.CountAsync());
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

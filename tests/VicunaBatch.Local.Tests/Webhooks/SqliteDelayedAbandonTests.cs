using VicunaBatch.Core.Ports;

namespace VicunaBatch.Local.Tests.Webhooks;

public sealed class SqliteDelayedAbandonTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly ManualTimeProvider _time = new(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000));

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task AbandonAsync_withDelay_invisibleUntilDelayThenRedeliveredWithSameIdAndNextCount()
    {
        IWorkQueue queue = new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = _folder.Combine("q.db"), QueueName = "webhooks" }, _time);
        await queue.SendAsync([new("evt_1", "body")]);
        var first = (await queue.ReceiveAsync(1)).Single();

        await queue.AbandonAsync(first, TimeSpan.FromSeconds(5));
        await queue.SendAsync([new("evt_1", "duplicate")]);
        _time.Advance(TimeSpan.FromMilliseconds(4999));
        Assert.Empty(await queue.ReceiveAsync(1));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var second = (await queue.ReceiveAsync(1)).Single();

        Assert.Equal(("evt_1", "body", 2), (second.MessageId, second.Body, second.DeliveryCount));
        await Assert.ThrowsAsync<WorkQueueException>(() => queue.AbandonAsync(first, TimeSpan.FromSeconds(5)));
    }
}

using Azure.Storage.Queues;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Azure.Tests;

/// <summary>
/// What only <see cref="StorageWorkQueue"/> (the control plane) does, against a real Azurite queue service; what every
/// queue does is the work-queue contract (<see cref="StorageWorkQueueContractTests"/>).
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class StorageWorkQueueTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly string _name = azurite.UniqueName("queue");
    private StorageWorkQueue _queue = null!;

    public async Task InitializeAsync()
    {
        _queue = new StorageWorkQueue(azurite.Queues(), _name, TimeSpan.FromSeconds(30), TimeProvider.System);
        await _queue.CreateIfNotExistsAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private static OutgoingMessage Message(string id) => new(id, $$"""{"job_id":"{{id}}"}""");

    [Fact]
    public async Task DeadLetterAsync_goesToThePoisonQueueNamedAfterTheQueueWithTheBody()
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

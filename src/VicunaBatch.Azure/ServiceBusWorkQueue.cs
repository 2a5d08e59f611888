using System.Collections.Concurrent;
using Azure.Messaging.ServiceBus;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Azure;

/// <summary>
/// <see cref="IWorkQueue"/> on a Service Bus queue: the shard work queue. Messages are claim checks (the shard
/// JSON: job, shard, line and byte range; the input stays in blob storage), sent in size-limited batches with
/// the shard's id as <c>MessageId</c>, so the queue's duplicate detection drops a shard sent twice (a submit
/// retried after a crash). Receive is peek-lock and waits up to the receive wait time for a first message (AMQP
/// has no receive that answers at once: an idle receiver long-polls); the lock token of every message this queue
/// holds maps to the SDK message that settles it. Lock renewal is the caller's (<see cref="ShardProcessor"/> renews while a
/// shard runs). A settle or renew whose lock expired or was taken over is <see cref="WorkQueueFailure.LockLost"/>;
/// other service failures are <see cref="WorkQueueFailure.Unavailable"/>. Delayed abandon is not supported:
/// Service Bus has no delayed redelivery that keeps the message id (the webhook retries ride Storage queues).
/// </summary>
public sealed class ServiceBusWorkQueue : IWorkQueue, IAsyncDisposable
{
    private const int MaxReasonLength = 1024;
    private const int MaxDescriptionLength = 4096;
    private readonly Lazy<ServiceBusSender> _sender;
    private readonly Lazy<ServiceBusReceiver> _receiver;
    private readonly TimeSpan _receiveWaitTime;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, Held> _lockTokenToHeld = new(StringComparer.Ordinal);

    /// <summary>Sender and receiver are made on first use: a host that only sends (the Api) never opens a receiver,
    /// for which its identity has no role.</summary>
    public ServiceBusWorkQueue(Func<ServiceBusSender> sender, Func<ServiceBusReceiver> receiver, TimeSpan receiveWaitTime, TimeProvider time)
    {
        if (receiveWaitTime <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(receiveWaitTime), receiveWaitTime, "must be > 0");
        (_sender, _receiver, _receiveWaitTime, _time) = (new(sender), new(receiver), receiveWaitTime, time);
    }

    /// <summary>The queue <paramref name="queueName"/> of the namespace, with <paramref name="options"/>' receive settings.</summary>
    public ServiceBusWorkQueue(ServiceBusClient client, string queueName, AzureServiceBusOptions options, TimeProvider time) : this(
        () => client.CreateSender(queueName),
        () => client.CreateReceiver(queueName, new ServiceBusReceiverOptions
        {
            ReceiveMode = ServiceBusReceiveMode.PeekLock, PrefetchCount = options.PrefetchCount,
        }),
        options.ReceiveWaitTime, time)
    {
    }

    /// <summary>Messages received and not yet settled by this queue.</summary>
    public int NumHeld => _lockTokenToHeld.Count;

    public async Task SendAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken = default)
    {
        var sender = _sender.Value;
        int next = 0;
        while (next < messages.Count)
        {
            using var batch = await CallAsync(messages[next].MessageId, "send", () => sender.CreateMessageBatchAsync(cancellationToken).AsTask());
            int first = next;
            while (next < messages.Count && batch.TryAddMessage(ToServiceBus(messages[next]))) next++;
            if (next == first)
                throw new ArgumentException($"message {messages[first].MessageId} ({messages[first].Body.Length} characters) is larger than a Service Bus message may be", nameof(messages));
            await CallAsync(messages[first].MessageId, "send", async () => { await sender.SendMessagesAsync(batch, cancellationToken); return 0; });
        }
    }

    public async Task<IReadOnlyList<ReceivedMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        var receiver = _receiver.Value;
        var received = await CallAsync("", "receive", () => receiver.ReceiveMessagesAsync(maxMessages, _receiveWaitTime, cancellationToken));
        PruneExpired();
        var messages = new List<ReceivedMessage>(received.Count);
        foreach (var message in received)
        {
            _lockTokenToHeld[message.LockToken] = new Held(message, message.LockedUntil);
            messages.Add(new ReceivedMessage(message.MessageId, message.Body.ToString(), message.DeliveryCount, message.LockToken, message.LockedUntil));
        }
        return messages;
    }

    public Task CompleteAsync(ReceivedMessage message, CancellationToken cancellationToken = default) =>
        SettleAsync(message, "complete", (receiver, m) => receiver.CompleteMessageAsync(m, cancellationToken));

    /// <summary>Releases the lock now; Service Bus counts one more delivery and dead-letters the message itself past the
    /// queue's MaxDeliveryCount.</summary>
    public Task AbandonAsync(ReceivedMessage message, CancellationToken cancellationToken = default) =>
        SettleAsync(message, "abandon", (receiver, m) => receiver.AbandonMessageAsync(m, cancellationToken: cancellationToken));

    /// <summary>Moves the message to the queue's dead-letter subqueue; the reason (its first 1,024 characters) is the
    /// DeadLetterReason, the whole reason (up to 4,096) the error description.</summary>
    public Task DeadLetterAsync(ReceivedMessage message, string reason, CancellationToken cancellationToken = default) =>
        SettleAsync(message, "dead-letter", (receiver, m) => receiver.DeadLetterMessageAsync(m,
            Truncate(reason, MaxReasonLength), Truncate(reason, MaxDescriptionLength), cancellationToken));

    public async Task<DateTimeOffset> RenewLockAsync(ReceivedMessage message, CancellationToken cancellationToken = default)
    {
        var held = Find(message, "renew the lock of");
        await LockedCallAsync(message, "renew the lock of", () => _receiver.Value.RenewMessageLockAsync(held.Message, cancellationToken));
        return held.LockedUntil = held.Message.LockedUntil; // the SDK moves it forward on the message it renewed
    }

    public async ValueTask DisposeAsync()
    {
        if (_receiver.IsValueCreated) await _receiver.Value.DisposeAsync();
        if (_sender.IsValueCreated) await _sender.Value.DisposeAsync();
    }

    /// <summary>Forgets messages whose lock ran out over a minute ago: they are someone else's by now, and settling them
    /// is <see cref="WorkQueueFailure.LockLost"/> either way.</summary>
    private void PruneExpired()
    {
        var cutoff = _time.GetUtcNow() - TimeSpan.FromMinutes(1);
        foreach (var (token, held) in _lockTokenToHeld)
            if (held.LockedUntil < cutoff) _lockTokenToHeld.TryRemove(token, out _);
    }

    private static ServiceBusMessage ToServiceBus(OutgoingMessage message) => new(BinaryData.FromString(message.Body))
    {
        MessageId = message.MessageId,
        ContentType = "application/json",
    };

    private async Task SettleAsync(ReceivedMessage message, string verb, Func<ServiceBusReceiver, ServiceBusReceivedMessage, Task> settle)
    {
        var held = Find(message, verb);
        try { await LockedCallAsync(message, verb, () => settle(_receiver.Value, held.Message)); }
        catch (WorkQueueException e) when (e.Reason == WorkQueueFailure.LockLost)
        {
            _lockTokenToHeld.TryRemove(message.LockToken, out _); // the lock is gone for good: another receiver has the message
            throw;
        }
        _lockTokenToHeld.TryRemove(message.LockToken, out _);
    }

    /// <summary>A received message and its lock expiry as this queue last renewed it.</summary>
    private sealed class Held(ServiceBusReceivedMessage message, DateTimeOffset lockedUntil)
    {
        public ServiceBusReceivedMessage Message { get; } = message;
        public DateTimeOffset LockedUntil { get; set; } = lockedUntil;
    }

    private Held Find(ReceivedMessage message, string verb) =>
        _lockTokenToHeld.TryGetValue(message.LockToken, out var held) ? held
            : throw new WorkQueueException(WorkQueueFailure.LockLost, message.MessageId,
                $"cannot {verb} message {message.MessageId}: this queue holds no lock {message.LockToken} (settled already, or received elsewhere)");

    private static async Task LockedCallAsync(ReceivedMessage message, string verb, Func<Task> call)
    {
        try { await call(); }
        catch (ServiceBusException e) when (e.Reason is ServiceBusFailureReason.MessageLockLost or ServiceBusFailureReason.MessageNotFound)
        {
            throw new WorkQueueException(WorkQueueFailure.LockLost, message.MessageId,
                $"cannot {verb} message {message.MessageId}: its lock expired or another receiver settled it ({e.Reason})", e);
        }
        catch (Exception e) when (IsServiceFailure(e)) { throw Unavailable(message.MessageId, verb, e); }
    }

    private static async Task<T> CallAsync<T>(string messageId, string verb, Func<Task<T>> call)
    {
        try { return await call(); }
        catch (Exception e) when (IsServiceFailure(e)) { throw Unavailable(messageId, verb, e); }
    }

    /// <summary>Every failure of a call to the namespace; all are <see cref="WorkQueueFailure.Unavailable"/> (a missing
    /// queue or role too: right after a deployment, roles take minutes to apply), with the reason in the message.</summary>
    private static bool IsServiceFailure(Exception e) => e is ServiceBusException or UnauthorizedAccessException
        or global::Azure.Identity.AuthenticationFailedException or global::Azure.Identity.CredentialUnavailableException or TimeoutException;

    private static WorkQueueException Unavailable(string messageId, string verb, Exception e) => new(WorkQueueFailure.Unavailable, messageId,
        $"could not {verb} {(messageId.Length > 0 ? $"message {messageId} of " : "")}the Service Bus work queue: "
        + (e is ServiceBusException s ? $"{s.Reason}{(s.IsTransient ? " (transient)" : "")}: {s.Message}" : e.Message), e);

    private static string Truncate(string text, int max) => text.Length <= max ? text : text[..max];
}

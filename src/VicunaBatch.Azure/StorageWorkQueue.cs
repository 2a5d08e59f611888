using System.Collections.Concurrent;
using System.Text.Json.Serialization;
using System.Text.Json;
using Azure.Storage.Queues.Models;
using Azure.Storage.Queues;
using Azure;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Azure;

/// <summary>
/// <see cref="IWorkQueue"/> on an Azure Storage queue, for the control plane (shard-done events, webhook
/// deliveries). A message's text is an envelope <c>{"id","body"}</c> carrying the port's message id (Storage
/// assigns its own). The lock is the visibility timeout and the pop receipt: receive hides a message for the
/// lock duration; complete deletes it; abandon (with a delay: the webhook retry schedule) sets its visibility;
/// renew extends it. A renewal changes the pop receipt, so this queue remembers, per delivery it holds, the newest
/// receipt and settles with it; a lock token of an earlier delivery of the same message keeps its own receipt,
/// which the service no longer accepts. A receipt the service rejects (the message was received again, here or
/// elsewhere, or deleted) is <see cref="WorkQueueFailure.LockLost"/>; a receipt is not rejected merely because the
/// lock duration passed, only once another receive took the message. Dead letters go to
/// <c>&lt;queue&gt;-poison</c> (the Functions host's poison queue) with the reason in the envelope.
/// <para>Unlike Service Bus, a Storage queue has no duplicate detection: sending a message id twice queues
/// two messages; and its order is best effort. The consumers are idempotent (the finalizer per job, the deliverer per event id via its
/// delivery log).</para>
/// </summary>
public sealed class StorageWorkQueue : IWorkQueue
{
    public const string PoisonSuffix = "-poison";

    /// <summary>The service returns at most 32 messages per receive.</summary>
    private const int MaxMessagesPerReceive = 32;

    private readonly QueueClient _queue;
    private readonly QueueClient _poison;
    private readonly TimeSpan _lockDuration;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, HeldReceipt> _queueMessageIdToHeld = new(StringComparer.Ordinal);

    /// <param name="queue">The queue; its poison queue is <c>{name}-poison</c> on the same account and options.</param>
    public StorageWorkQueue(QueueServiceClient service, string queueName, TimeSpan lockDuration, TimeProvider time)
    {
        if (!AzureNames.IsContainerOrQueueName(queueName + PoisonSuffix))
            throw new ArgumentException($"queue name \"{queueName}\" must be lowercase letters, digits and single hyphens, at most 56 characters", nameof(queueName));
        (_queue, _poison, _lockDuration, _time) = (service.GetQueueClient(queueName), service.GetQueueClient(queueName + PoisonSuffix), lockDuration, time);
    }

    public string Name => _queue.Name;

    public string PoisonQueueName => _poison.Name;

    /// <summary>Creates the queue and its poison queue when missing (Azurite; on Azure the infra creates both).</summary>
    public async Task CreateIfNotExistsAsync(CancellationToken cancellationToken = default)
    {
        await _queue.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        await _poison.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
    }

    public async Task SendAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken = default)
    {
        foreach (var message in messages)
            await RunAsync(message.MessageId, "send", () => _queue.SendMessageAsync(Envelope.Wrap(message), cancellationToken));
    }

    public async Task<IReadOnlyList<ReceivedMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        var received = await RunAsync("", "receive from", () =>
            _queue.ReceiveMessagesAsync(Math.Min(maxMessages, MaxMessagesPerReceive), _lockDuration, cancellationToken));
        return received.Value.Select(Track).ToList();
    }

    /// <summary>The port view of a message received by someone else (the Functions queue trigger), so this queue can settle it.</summary>
    public ReceivedMessage Track(QueueMessage message)
    {
        _queueMessageIdToHeld[message.MessageId] = new HeldReceipt(message.PopReceipt, message.PopReceipt);
        var (id, body) = Envelope.Unwrap(message.MessageId, message.MessageText);
        return new ReceivedMessage(id, body, (int)message.DequeueCount, LockToken(message.MessageId, message.PopReceipt),
            message.NextVisibleOn ?? _time.GetUtcNow() + _lockDuration);
    }

    /// <summary>The port body of a message received by someone else, for a consumer that lets the receiver settle it
    /// (the Functions host deletes a message whose function returned); unlike <see cref="Track"/> nothing is remembered.</summary>
    public static string BodyOf(QueueMessage message) => Envelope.Unwrap(message.MessageId, message.MessageText).Body;

    public Task CompleteAsync(ReceivedMessage message, CancellationToken cancellationToken = default) =>
        SettleAsync(message, "complete", (queueMessageId, popReceipt) => _queue.DeleteMessageAsync(queueMessageId, popReceipt, cancellationToken));

    public Task AbandonAsync(ReceivedMessage message, CancellationToken cancellationToken = default) =>
        AbandonAsync(message, TimeSpan.Zero, cancellationToken);

    /// <summary>Makes the message visible again after <paramref name="delay"/> (at most 7 days); the next receive counts one more delivery.</summary>
    public async Task AbandonAsync(ReceivedMessage message, TimeSpan delay, CancellationToken cancellationToken = default)
    {
        var visibility = delay < TimeSpan.Zero ? TimeSpan.Zero : delay;
        if (visibility > TimeSpan.FromDays(7)) throw new ArgumentOutOfRangeException(nameof(delay), delay, "a Storage queue hides a message for at most 7 days");
        await SettleAsync(message, "abandon", (queueMessageId, popReceipt) => _queue.UpdateMessageAsync(queueMessageId, popReceipt, visibilityTimeout: visibility, cancellationToken: cancellationToken));
    }

    /// <summary>Renews the lock, copies the message with the reason to the poison queue, then deletes it. The renewal first:
    /// the service grants it only to the delivery that holds the message, so a receiver that lost the lock writes no dead
    /// letter of a message that lives on. A crash between the copy and the delete leaves a duplicate dead letter, never a
    /// lost one.</summary>
    public async Task DeadLetterAsync(ReceivedMessage message, string reason, CancellationToken cancellationToken = default)
    {
        await HoldAsync(message, "dead-letter", cancellationToken);
        var letter = new Envelope(message.MessageId, message.Body)
        {
            Reason = reason, DeliveryCount = message.DeliveryCount, DeadLetteredAt = _time.GetUtcNow(), Queue = _queue.Name,
        };
        await RunAsync(message.MessageId, "dead-letter", () => _poison.SendMessageAsync(letter.ToJson(), cancellationToken));
        await SettleAsync(message, "dead-letter", (id, receipt) => _queue.DeleteMessageAsync(id, receipt, cancellationToken));
    }

    public Task<DateTimeOffset> RenewLockAsync(ReceivedMessage message, CancellationToken cancellationToken = default) =>
        HoldAsync(message, "renew the lock of", cancellationToken);

    /// <summary>Hides the message for the lock duration from now, with the newest receipt of its delivery.</summary>
    private async Task<DateTimeOffset> HoldAsync(ReceivedMessage message, string verb, CancellationToken cancellationToken)
    {
        var (queueMessageId, receivedWith, popReceipt) = Current(message);
        var receipt = await RunLockedAsync(message, verb, () =>
            _queue.UpdateMessageAsync(queueMessageId, popReceipt, visibilityTimeout: _lockDuration, cancellationToken: cancellationToken));
        _queueMessageIdToHeld[queueMessageId] = new HeldReceipt(receivedWith, receipt.Value.PopReceipt); // accepted: this is the delivery the queue holds
        return receipt.Value.NextVisibleOn;
    }

    /// <summary>Dead letters in the poison queue, oldest first, without removing them (peek: at most 32).</summary>
    public async Task<IReadOnlyList<StorageDeadLetter>> PeekDeadLettersAsync(CancellationToken cancellationToken = default)
    {
        var peeked = await RunAsync("", "peek", () => _poison.PeekMessagesAsync(MaxMessagesPerReceive, cancellationToken));
        return peeked.Value.Select(p => Envelope.Parse(p.MessageText) is { } e
            ? new StorageDeadLetter(e.Id, e.Body, e.DeliveryCount ?? 0, e.Reason)
            : new StorageDeadLetter(p.MessageId, p.MessageText, (int)p.DequeueCount, null)).ToList();
    }

    /// <summary>Messages in the queue, visible or not (approximate, as the service counts them).</summary>
    public async Task<int> CountAsync(CancellationToken cancellationToken = default) =>
        (await RunAsync("", "count", () => _queue.GetPropertiesAsync(cancellationToken))).Value.ApproximateMessagesCount;

    private async Task SettleAsync(ReceivedMessage message, string verb, Func<string, string, Task> settle)
    {
        var (queueMessageId, receivedWith, popReceipt) = Current(message);
        await RunLockedAsync(message, verb, async () => { await settle(queueMessageId, popReceipt); return 0; });
        _queueMessageIdToHeld.TryRemove(KeyValuePair.Create(queueMessageId, new HeldReceipt(receivedWith, popReceipt)));
    }

    /// <summary>The pop receipt a delivery was received with, and its newest (a renewal or update changes it).</summary>
    private sealed record HeldReceipt(string ReceivedWith, string Newest);

    /// <summary>The queue's own id, the pop receipt of the message's delivery and the newest receipt of that delivery: the
    /// remembered one while this queue holds that delivery, else its own (an earlier delivery's, which the service rejects).</summary>
    private (string QueueMessageId, string ReceivedWith, string PopReceipt) Current(ReceivedMessage message)
    {
        int split = message.LockToken.IndexOf('\n');
        if (split <= 0) throw new WorkQueueException(WorkQueueFailure.LockLost, message.MessageId, $"message {message.MessageId} has no Storage queue lock token");
        var (queueMessageId, receivedWith) = (message.LockToken[..split], message.LockToken[(split + 1)..]);
        return _queueMessageIdToHeld.TryGetValue(queueMessageId, out var held) && held.ReceivedWith == receivedWith
            ? (queueMessageId, receivedWith, held.Newest) : (queueMessageId, receivedWith, receivedWith);
    }

    private static string LockToken(string queueMessageId, string popReceipt) => $"{queueMessageId}\n{popReceipt}";

    private async Task<T> RunLockedAsync<T>(ReceivedMessage message, string verb, Func<Task<T>> call)
    {
        try { return await call(); }
        catch (RequestFailedException e) when ((e.Status == 404 && e.ErrorCode is "MessageNotFound") || (e.Status == 400 && e.ErrorCode is "PopReceiptMismatch" or "InvalidQueryParameterValue"))
        {
            throw new WorkQueueException(WorkQueueFailure.LockLost, message.MessageId,
                $"cannot {verb} message {message.MessageId} of queue {_queue.Name}: it was received again or settled ({StorageErrors.Describe(e)})", e);
        }
        catch (Exception e) when (StorageErrors.IsStorageFailure(e)) { throw Unavailable(message.MessageId, verb, e); }
    }

    private async Task<T> RunAsync<T>(string messageId, string verb, Func<Task<T>> call)
    {
        try { return await call(); }
        catch (Exception e) when (StorageErrors.IsStorageFailure(e)) { throw Unavailable(messageId, verb, e); }
    }

    private WorkQueueException Unavailable(string messageId, string verb, Exception e) => new(WorkQueueFailure.Unavailable, messageId,
        $"could not {verb} Storage queue {_queue.Name}{(messageId.Length > 0 ? $" (message {messageId})" : "")}: "
        + (e is RequestFailedException r ? $"{StorageErrors.Describe(r)}: {StorageErrors.FirstLine(r.Message)}" : e.Message), e);

    /// <summary>The text of a queue message: the port's id and body (plus, in the poison queue, why it died).</summary>
    internal sealed record Envelope(string Id, string Body)
    {
        public string? Reason { get; init; }
        public int? DeliveryCount { get; init; }
        public DateTimeOffset? DeadLetteredAt { get; init; }
        public string? Queue { get; init; }

        private static readonly JsonSerializerOptions Options = new(JsonDefaults.Options) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

        public string ToJson() => JsonSerializer.Serialize(this, Options);

        public static string Wrap(OutgoingMessage message) => new Envelope(message.MessageId, message.Body).ToJson();

        /// <summary>The id and body of a message; a message written around this queue (not an envelope) is its own body.</summary>
        public static (string Id, string Body) Unwrap(string queueMessageId, string text) =>
            Parse(text) is { } e ? (e.Id, e.Body) : (queueMessageId, text);

        public static Envelope? Parse(string text)
        {
            try { return JsonSerializer.Deserialize<Envelope>(text, Options) is { Id.Length: > 0, Body: not null } e ? e : null; }
            catch (JsonException) { return null; }
        }
    }
}

/// <summary>A message in a Storage poison queue; <see cref="Reason"/> is null for one the Functions host moved there itself.</summary>
public sealed record StorageDeadLetter(string MessageId, string Body, int DeliveryCount, string? Reason);

using System.Collections.Concurrent;
using Azure.Messaging.ServiceBus;

namespace VicunaBatch.Azure.Tests;

/// <summary>
/// A Service Bus queue in memory for the SDK's own test seams: <see cref="Sender"/> and <see cref="Receiver"/>
/// subclass <see cref="ServiceBusSender"/> / <see cref="ServiceBusReceiver"/> and override their virtual members;
/// received messages are built with <see cref="ServiceBusModelFactory.ServiceBusReceivedMessage"/>. It models what
/// the work queue relies on: duplicate detection by MessageId, peek-lock with expiring lock tokens (clock in the
/// test's hands), delivery counts, abandon, dead-letter with reason, a receive that waits up to its maxWaitTime
/// (real time) for a first message, the queue's maxDeliveryCount (a message delivered that often and given back is
/// dead-lettered with reason MaxDeliveryCountExceeded), and the failure reasons the SDK throws (MessageLockLost for a
/// stale lock). No emulator: the Service Bus emulator needs Docker, which is not here.
/// </summary>
internal sealed class FakeServiceBus(TimeSpan lockDuration, long maxBatchBytes = 256 * 1024)
{
    private readonly object _gate = new();
    public TimeSpan LockDuration { get; } = lockDuration;
    public long MaxBatchBytes { get; } = maxBatchBytes;
    private readonly List<Stored> _queue = [];
    private readonly HashSet<string> _seenIds = new(StringComparer.Ordinal);
    private TaskCompletionSource _sent = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public DateTimeOffset Now { get; set; } = DateTimeOffset.UnixEpoch.AddYears(55);

    /// <summary>The test's clock as a <see cref="TimeProvider"/>, for the queue under test.</summary>
    public TimeProvider Clock => new BusClock(this);

    private sealed class BusClock(FakeServiceBus bus) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => bus.Now;
    }
    public List<ServiceBusMessage> Sent { get; } = [];
    public List<int> BatchSizes { get; } = [];
    public List<(string MessageId, string Reason, string Description, int DeliveryCount)> DeadLetters { get; } = [];

    /// <summary>The queue's maxDeliveryCount (infra sets 5); unlimited when null.</summary>
    public int? MaxDeliveryCount { get; init; }

    /// <summary>Thrown by the next call of any kind, once (a failing namespace).</summary>
    public ServiceBusException? NextFailure { get; set; }

    public Sender NewSender() => new(this);
    public Receiver NewReceiver() => new(this);

    public int NumActive { get { lock (_gate) return _queue.Count; } }

    private sealed class Stored(ServiceBusMessage message, long sequenceNumber)
    {
        public ServiceBusMessage Message { get; } = message;
        public long SequenceNumber { get; } = sequenceNumber;
        public int DeliveryCount { get; set; }
        public Guid? LockToken { get; set; }
        public DateTimeOffset LockedUntil { get; set; }
    }

    private void ThrowIfFailing()
    {
        if (NextFailure is { } failure) { NextFailure = null; throw failure; }
    }

    private void Send(IEnumerable<ServiceBusMessage> messages)
    {
        lock (_gate)
        {
            ThrowIfFailing();
            foreach (var message in messages)
            {
                Sent.Add(message);
                if (_seenIds.Add(message.MessageId)) _queue.Add(new Stored(message, _seenIds.Count));
            }
            _sent.TrySetResult();
            _sent = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>As the SDK's receive does: returns once a message is visible, or empty after <paramref name="maxWait"/>
    /// (the SDK's default, the retry options' TryTimeout, is 60 s).</summary>
    private async Task<IReadOnlyList<ServiceBusReceivedMessage>> ReceiveAsync(int max, TimeSpan? maxWait, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + (maxWait ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            Task sent;
            lock (_gate)
            {
                var received = Receive(max);
                if (received.Count > 0) return received;
                sent = _sent.Task;
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) return [];
            await Task.WhenAny(sent, Task.Delay(left, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    private IReadOnlyList<ServiceBusReceivedMessage> Receive(int max)
    {
        lock (_gate)
        {
            ThrowIfFailing();
            foreach (var spent in _queue.Where(s => s.DeliveryCount >= MaxDeliveryCount && (s.LockToken is null || s.LockedUntil <= Now)).ToList())
            {
                _queue.Remove(spent);
                DeadLetters.Add((spent.Message.MessageId, "MaxDeliveryCountExceeded", "delivered maxDeliveryCount times", spent.DeliveryCount));
            }
            var visible = _queue.Where(s => s.LockToken is null || s.LockedUntil <= Now).Take(max).ToList();
            return visible.Select(s =>
            {
                s.DeliveryCount++;
                s.LockToken = Guid.NewGuid();
                s.LockedUntil = Now + LockDuration;
                return ServiceBusModelFactory.ServiceBusReceivedMessage(body: s.Message.Body, messageId: s.Message.MessageId,
                    contentType: s.Message.ContentType, lockTokenGuid: s.LockToken.Value, deliveryCount: s.DeliveryCount,
                    lockedUntil: s.LockedUntil, sequenceNumber: s.SequenceNumber, enqueuedTime: Now);
            }).ToList();
        }
    }

    /// <summary>The stored message whose lock the received one holds, or MessageLockLost as the SDK throws it.</summary>
    private Stored Locked(string lockToken)
    {
        ThrowIfFailing();
        var stored = _queue.FirstOrDefault(s => s.LockToken?.ToString() == lockToken);
        if (stored is null || stored.LockedUntil <= Now)
            throw new ServiceBusException("The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.",
                ServiceBusFailureReason.MessageLockLost, "work");
        return stored;
    }

    private void Settle(ServiceBusReceivedMessage message, Action<Stored> settle) => Settle(message.LockToken, settle);

    private void Settle(string lockToken, Action<Stored> settle)
    {
        lock (_gate) settle(Locked(lockToken));
    }

    internal sealed class Sender(FakeServiceBus bus) : ServiceBusSender
    {
        private readonly ConcurrentDictionary<ServiceBusMessageBatch, List<ServiceBusMessage>> _batchToMessages = new();

        public override ValueTask<ServiceBusMessageBatch> CreateMessageBatchAsync(CancellationToken cancellationToken = default) =>
            CreateMessageBatchAsync(new CreateMessageBatchOptions(), cancellationToken);

        public override ValueTask<ServiceBusMessageBatch> CreateMessageBatchAsync(CreateMessageBatchOptions options, CancellationToken cancellationToken = default)
        {
            var messages = new List<ServiceBusMessage>();
            long bytes = 0;
            var batch = ServiceBusModelFactory.ServiceBusMessageBatch(bus.MaxBatchBytes, messages, options, message =>
            {
                long size = message.Body.ToMemory().Length + message.MessageId.Length + 64;
                if (bytes + size > bus.MaxBatchBytes) return false;
                bytes += size;
                return true;
            });
            _batchToMessages[batch] = messages;
            return ValueTask.FromResult(batch);
        }

        public override Task SendMessagesAsync(ServiceBusMessageBatch messageBatch, CancellationToken cancellationToken = default)
        {
            var messages = _batchToMessages[messageBatch];
            bus.BatchSizes.Add(messages.Count);
            bus.Send(messages);
            return Task.CompletedTask;
        }

        public override Task CloseAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;
    }

    internal sealed class Receiver(FakeServiceBus bus) : ServiceBusReceiver
    {
        public override Task<IReadOnlyList<ServiceBusReceivedMessage>> ReceiveMessagesAsync(int maxMessages, TimeSpan? maxWaitTime = null,
            CancellationToken cancellationToken = default) => bus.ReceiveAsync(maxMessages, maxWaitTime, cancellationToken);

        public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
        {
            bus.Settle(message, s => bus._queue.Remove(s));
            return Task.CompletedTask;
        }

        public override Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null,
            CancellationToken cancellationToken = default)
        {
            bus.Settle(message, s => s.LockToken = null);
            return Task.CompletedTask;
        }

        public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, string deadLetterReason, string? deadLetterErrorDescription = null,
            CancellationToken cancellationToken = default)
        {
            bus.Settle(message, s =>
            {
                bus._queue.Remove(s);
                bus.DeadLetters.Add((s.Message.MessageId, deadLetterReason, deadLetterErrorDescription ?? "", s.DeliveryCount));
            });
            return Task.CompletedTask;
        }

        /// <summary>As the SDK does, moves the received message's <see cref="ServiceBusReceivedMessage.LockedUntil"/> forward
        /// (its setter is internal to the SDK, hence reflection).</summary>
        public override Task RenewMessageLockAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
        {
            bus.Settle(message, s =>
            {
                s.LockedUntil = bus.Now + bus.LockDuration;
                typeof(ServiceBusReceivedMessage).GetProperty(nameof(ServiceBusReceivedMessage.LockedUntil))!.SetValue(message, s.LockedUntil);
            });
            return Task.CompletedTask;
        }
    
        public override Task CloseAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;
    }
}

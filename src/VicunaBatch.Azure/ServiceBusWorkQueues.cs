using System.Collections.Concurrent;
using Azure.Messaging.ServiceBus;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Azure;

/// <summary>
/// The models' work queues on one Service Bus namespace (<see cref="AzureServiceBusOptions.ModelQueuePrefix"/> and the
/// model's name, or the one <see cref="AzureServiceBusOptions.QueueName"/> for every model without a prefix), each
/// opened at first use.
/// </summary>
public sealed class ServiceBusWorkQueues(Func<string, ServiceBusWorkQueue> open, AzureServiceBusOptions options) : IWorkQueues, IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, ServiceBusWorkQueue> _queues = new(StringComparer.Ordinal);

    public IWorkQueue Of(string model) => _queues.GetOrAdd(QueueNameOf(model), open);

    /// <summary>The queue of <paramref name="model"/>: its own, or the one queue of a deployment that names none.</summary>
    public string QueueNameOf(string model) => options.ModelQueuePrefix is { } prefix ? prefix + model : options.QueueName;

    public async ValueTask DisposeAsync()
    {
        foreach (var queue in _queues.Values) await queue.DisposeAsync();
    }
}

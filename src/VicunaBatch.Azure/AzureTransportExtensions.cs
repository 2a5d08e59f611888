using Azure.Core;
using Azure.Identity;
using Azure.Messaging.ServiceBus;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Azure;

/// <summary>The control-plane queues of one storage account, as Storage queues (a queue trigger's message is tracked on them); Core sees them as <see cref="ControlQueues"/>.</summary>
public sealed record ControlPlaneQueues(StorageWorkQueue ShardDone, StorageWorkQueue WebhookDeliveries)
{
    public ControlQueues AsControlQueues() => new(ShardDone, WebhookDeliveries);
}

/// <summary>Wiring of the Azure parts: the one place that turns configuration into clients and ports.</summary>
public static class AzureTransportExtensions
{
    /// <summary>
    /// Binds <see cref="AzureTransportOptions"/> from the <c>Storage</c> and <c>ServiceBus</c> sections, applies
    /// <paramref name="configure"/>, validates (throws <see cref="ArgumentException"/> at once on a bad setting), and registers:
    /// <see cref="IBlobStore"/> (<see cref="AzureBlobStore"/>), <see cref="ICheckpointStore"/> (<see cref="BlobCheckpointStore"/>
    /// on the results container), <see cref="IJobStore"/> (<see cref="BlobJobStore"/>), the models' shard work queues
    /// (<see cref="IWorkQueues"/>: <see cref="ServiceBusWorkQueues"/>), <see cref="ControlQueues"/> (Storage queues, also as <see cref="ControlPlaneQueues"/>), the SDK clients and
    /// <see cref="TimeProvider.System"/> unless one is registered. Credentials: <c>DefaultAzureCredential</c> (managed
    /// identity on Azure, with <c>ClientId</c> when set), or the Azurite connection string.
    /// </summary>
    public static IServiceCollection AddAzureTransport(this IServiceCollection services, IConfiguration configuration,
        Action<AzureTransportOptions>? configure = null)
    {
        var options = new AzureTransportOptions();
        configuration.GetSection(AzureTransportOptions.StorageSection).Bind(options.Storage);
        configuration.GetSection(AzureTransportOptions.ServiceBusSection).Bind(options.ServiceBus);
        configure?.Invoke(options);
        options.Validate();
        var storage = options.Storage;

        services.AddSingleton(options);
        if (!services.Any(d => d.ServiceType == typeof(TimeProvider))) services.AddSingleton(TimeProvider.System);
        services.AddSingleton(_ => storage.UsesConnectionString
            ? new BlobServiceClient(storage.ConnectionString)
            : new BlobServiceClient(storage.BlobEndpoint, Credential(storage.ClientId)));
        services.AddSingleton(_ => storage.UsesConnectionString
            ? new QueueServiceClient(storage.ConnectionString, new QueueClientOptions { MessageEncoding = storage.MessageEncoding })
            : new QueueServiceClient(storage.QueueEndpoint, Credential(storage.ClientId), new QueueClientOptions { MessageEncoding = storage.MessageEncoding }));

        services.AddSingleton(sp => new AzureBlobStore(sp.GetRequiredService<BlobServiceClient>(), storage.Containers));
        services.AddSingleton<IBlobStore>(sp => CreatedIfAsked(storage, sp.GetRequiredService<AzureBlobStore>(), s => s.CreateContainersAsync()));
        services.AddSingleton<ICheckpointStore>(sp =>
        {
            var container = sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(storage.Containers.Results);
            if (storage.CreateIfMissing) container.CreateIfNotExists();
            return new BlobCheckpointStore(container, storage.CheckpointBlocksPerBlob);
        });
        services.AddSingleton<IJobStore>(sp => new BlobJobStore(sp.GetRequiredService<IBlobStore>()));
        services.AddSingleton(sp =>
        {
            StorageWorkQueue Queue(string name) => CreatedIfAsked(storage, new StorageWorkQueue(sp.GetRequiredService<QueueServiceClient>(),
                name, storage.QueueLockDuration, sp.GetRequiredService<TimeProvider>()), q => q.CreateIfNotExistsAsync());
            return new ControlPlaneQueues(Queue(storage.Queues.ShardDone), Queue(storage.Queues.WebhookDeliveries));
        });
        services.AddSingleton(sp => sp.GetRequiredService<ControlPlaneQueues>().AsControlQueues());

        var serviceBus = options.ServiceBus;
        services.AddSingleton(_ => serviceBus.IsConfigured
            ? !string.IsNullOrEmpty(serviceBus.ConnectionString)
                ? new ServiceBusClient(serviceBus.ConnectionString)
                : new ServiceBusClient(serviceBus.Host, Credential(serviceBus.ClientId))
            : throw new InvalidOperationException(
                $"the Service Bus work queue is not configured: set {AzureTransportOptions.ServiceBusSection}:FullyQualifiedNamespace (ServiceBus__fullyQualifiedNamespace)"));
        services.AddSingleton(sp => new ServiceBusWorkQueues(
            queue => new ServiceBusWorkQueue(sp.GetRequiredService<ServiceBusClient>(), queue, serviceBus, sp.GetRequiredService<TimeProvider>()), serviceBus));
        services.AddSingleton<IWorkQueues>(sp => sp.GetRequiredService<ServiceBusWorkQueues>());
        return services;
    }

    private static TokenCredential Credential(string? clientId) =>
        new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = string.IsNullOrEmpty(clientId) ? null : clientId });

    /// <summary>DI factories are synchronous; creating containers and queues happens once, at first resolve, and only for Azurite.</summary>
    private static T CreatedIfAsked<T>(AzureStorageOptions storage, T resource, Func<T, Task> create)
    {
        if (storage.CreateIfMissing) Task.Run(() => create(resource)).GetAwaiter().GetResult();
        return resource;
    }
}

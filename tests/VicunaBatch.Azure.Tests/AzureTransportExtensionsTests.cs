using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Azure.Tests;

/// <summary><see cref="AzureTransportExtensions.AddAzureTransport"/>: binding of infra/bicep's app settings, validation, and the Azurite path.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class AzureTransportExtensionsTests(AzuriteFixture azurite)
{
    /// <summary>The Function App's settings as functions.bicep writes them (environment variables, "__" → ":").</summary>
    private static readonly Dictionary<string, string?> FunctionAppSettings = new()
    {
        ["Storage:blobServiceUri"] = "https://stvicuna.blob.core.windows.net/",
        ["Storage:queueServiceUri"] = "https://stvicuna.queue.core.windows.net/",
        ["Storage:credential"] = "managedidentity",
        ["Storage:clientId"] = "00000000-0000-0000-0000-000000000001",
        ["Storage:Containers:Inputs"] = "inputs",
        ["Storage:Containers:Results"] = "results",
        ["Storage:Containers:Jobs"] = "jobs",
        ["Storage:Containers:Inbox"] = "inbox",
        ["Storage:Containers:Pipelines"] = "pipelines",
        ["Storage:Queues:ShardDone"] = "shard-done",
        ["Storage:Queues:WebhookDeliveries"] = "webhook-deliveries",
        ["ServiceBus:fullyQualifiedNamespace"] = "sb-vicuna.servicebus.windows.net",
        ["ServiceBus:credential"] = "managedidentity",
        ["ServiceBus:clientId"] = "00000000-0000-0000-0000-000000000001",
        ["ServiceBus:QueueName"] = "work",
    };

    private static ServiceProvider Build(Dictionary<string, string?> settings, Action<AzureTransportOptions>? configure = null) =>
        new ServiceCollection().AddAzureTransport(new ConfigurationBuilder().AddInMemoryCollection(settings).Build(), configure).BuildServiceProvider();

    private static Dictionary<string, string?> With(params (string Key, string? Value)[] changes)
    {
        var settings = new Dictionary<string, string?>(FunctionAppSettings);
        foreach (var (key, value) in changes) settings[key] = value;
        return settings;
    }

    [Fact]
    public void AddAzureTransport_functionAppSettings_bindsEveryoneOfThem()
    {
        using var services = Build(FunctionAppSettings);

        var options = services.GetRequiredService<AzureTransportOptions>();

        Assert.Equal(new Uri("https://stvicuna.blob.core.windows.net/"), options.Storage.BlobServiceUri);
        Assert.Equal(new Uri("https://stvicuna.queue.core.windows.net/"), options.Storage.QueueServiceUri);
        Assert.Equal("00000000-0000-0000-0000-000000000001", options.Storage.ClientId);
        Assert.Equal(("sb-vicuna.servicebus.windows.net", "work"), (options.ServiceBus.FullyQualifiedNamespace, options.ServiceBus.QueueName));
        Assert.Null(options.Storage.ConnectionString);
    }

    [Fact]
    public async Task AddAzureTransport_functionAppSettings_resolvesPortsOnTheNamedResourcesWithoutCallingThem()
    {
        await using var services = Build(FunctionAppSettings);

        var queues = services.GetRequiredService<ControlPlaneQueues>();
        var workQueue = services.GetRequiredService<IWorkQueues>().Of("any-model");
        var blobs = services.GetRequiredService<global::Azure.Storage.Blobs.BlobServiceClient>();

        Assert.IsType<AzureBlobStore>(services.GetRequiredService<IBlobStore>());
        Assert.IsType<BlobCheckpointStore>(services.GetRequiredService<ICheckpointStore>());
        Assert.IsType<BlobJobStore>(services.GetRequiredService<IJobStore>());
        Assert.IsType<ServiceBusWorkQueue>(workQueue);
        Assert.Equal(("shard-done", "webhook-deliveries", "shard-done-poison"), (queues.ShardDone.Name, queues.WebhookDeliveries.Name, queues.ShardDone.PoisonQueueName));
        Assert.Equal("stvicuna", blobs.AccountName);
        Assert.Equal("sb-vicuna.servicebus.windows.net", services.GetRequiredService<global::Azure.Messaging.ServiceBus.ServiceBusClient>().FullyQualifiedNamespace);
    }

    [Fact]
    public void AddAzureTransport_accountNameOnly_derivesTheEndpoints()
    {
        using var services = Build(With(("Storage:blobServiceUri", null), ("Storage:queueServiceUri", null), ("Storage:AccountName", "stother")));

        Assert.Equal("stother", services.GetRequiredService<global::Azure.Storage.Blobs.BlobServiceClient>().AccountName);
        Assert.Equal(new Uri("https://stother.queue.core.windows.net/"), services.GetRequiredService<global::Azure.Storage.Queues.QueueServiceClient>().Uri);
    }

    [Theory]
    [InlineData("Storage:blobServiceUri", null, "both BlobServiceUri and QueueServiceUri")]
    [InlineData("Storage:ConnectionString", "UseDevelopmentStorage=true", "not both")]
    [InlineData("Storage:Containers:Jobs", "Jobs_State", "Storage:Containers:Jobs")]
    [InlineData("Storage:Queues:ShardDone", "a-queue-name-that-is-far-too-long-to-leave-room-for-poison", "Storage:Queues:ShardDone")]
    [InlineData("Storage:QueueLockDuration", "00:00:00", "QueueLockDuration")]
    [InlineData("ServiceBus:fullyQualifiedNamespace", "https://sb-vicuna.servicebus.windows.net/", "host name")]
    [InlineData("ServiceBus:ConnectionString", "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=v", "one of")]
    public void AddAzureTransport_badSetting_throwsAtOnceNamingIt(string key, string? value, string expected)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => Build(With((key, value))));

        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public async Task WorkQueue_serviceBusNotConfigured_failsOnResolveNamingTheSetting()
    {
        await using var services = Build(With(("ServiceBus:fullyQualifiedNamespace", null)));

        var e = Assert.Throws<InvalidOperationException>(() => services.GetRequiredService<IWorkQueues>().Of("any-model"));

        Assert.Contains("ServiceBus__fullyQualifiedNamespace", e.Message);
        Assert.NotNull(services.GetRequiredService<ControlPlaneQueues>()); // the control plane does not need it
    }

    [Fact]
    public async Task AddAzureTransport_azuriteConnectionString_portsWorkEndToEnd()
    {
        var containers = azurite.UniqueContainers();
        var settings = new Dictionary<string, string?>
        {
            ["Storage:ConnectionString"] = azurite.ConnectionString,
            ["Storage:CreateIfMissing"] = "true",
            ["Storage:Containers:Inputs"] = containers.Inputs, ["Storage:Containers:Results"] = containers.Results,
            ["Storage:Containers:Jobs"] = containers.Jobs, ["Storage:Containers:Inbox"] = containers.Inbox,
            ["Storage:Containers:Pipelines"] = containers.Pipelines,
            ["Storage:Queues:ShardDone"] = azurite.UniqueName("done"), ["Storage:Queues:WebhookDeliveries"] = azurite.UniqueName("hooks"),
        };
        await using var services = Build(settings);

        var blobs = services.GetRequiredService<IBlobStore>();
        await blobs.PutBytesAsync("jobs/j/plan.json", Encoding.UTF8.GetBytes("{}"), BlobCondition.IfNotExists);
        var queues = services.GetRequiredService<ControlPlaneQueues>();
        await queues.ShardDone.SendAsync([new ShardDoneEvent("j", 0).ToMessage()]);
        await services.GetRequiredService<ICheckpointStore>().AppendAsync("j", 0, new RequestOutcome
        {
            CustomId = "a", LineNumber = 1, Endpoint = BatchEndpoint.Completions, CreatedAt = 0, Text = "t",
        });

        Assert.Equal("{}", Encoding.UTF8.GetString(await blobs.ReadBytesAsync("jobs/j/plan.json")));
        Assert.Equal(new ShardDoneEvent("j", 0), ShardDoneEvent.Parse(Assert.Single(await queues.ShardDone.ReceiveAsync(4)).Body));
        Assert.Equal(["a"], await services.GetRequiredService<ICheckpointStore>().GetDoneCustomIdsAsync("j", 0));
    }
}

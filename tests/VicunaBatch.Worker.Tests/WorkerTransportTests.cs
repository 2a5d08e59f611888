using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Azure;
using VicunaBatch.Execution;
using VicunaBatch.Local;

namespace VicunaBatch.Worker.Tests;

/// <summary>Which parts the worker runs on, from configuration alone (the clients are built, nothing is contacted).</summary>
public sealed class WorkerTransportTests
{
    [Fact]
    public void Azure_settings_give_the_service_bus_work_queue_blob_stores_and_the_shard_done_storage_queue()
    {
        var transport = Resolve(new()
        {
            ["ServiceBus:ConnectionString"] = "Endpoint=sb://127.0.0.1/;SharedAccessKeyName=test;SharedAccessKey=dGVzdA==",
            ["ServiceBus:QueueName"] = "work",
            ["Storage:ConnectionString"] = "UseDevelopmentStorage=true",
        });
        Assert.IsType<ServiceBusWorkQueue>(transport.Work);
        Assert.IsType<AzureBlobStore>(transport.Blobs);
        Assert.IsType<BlobCheckpointStore>(transport.Checkpoints);
        Assert.IsType<StorageWorkQueue>(transport.ShardDone);
    }

    [Fact]
    public void Local_data_path_gives_the_embedded_parts()
    {
        var transport = Resolve(new() { ["Local:DataPath"] = Path.Combine(Path.GetTempPath(), "vicuna-worker-transport", Guid.NewGuid().ToString("N")) });
        Assert.IsType<SqliteWorkQueue>(transport.Work);
        Assert.IsType<FolderBlobStore>(transport.Blobs);
        Assert.IsType<FolderCheckpointStore>(transport.Checkpoints);
        Assert.IsType<SqliteWorkQueue>(transport.ShardDone);
    }

    [Fact]
    public void No_transport_configured_is_refused_at_startup_naming_both_ways()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Resolve([]));
        Assert.Contains("Local:DataPath", error.Message);
        Assert.Contains("Azure settings", error.Message);
    }

    private static ShardPorts Resolve(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection().AddLogging().AddVicunaBatchWorker(configuration);
        return services.BuildServiceProvider().GetRequiredService<ShardPorts>();
    }
}

using Microsoft.Extensions.Configuration;

namespace VicunaBatch.Worker.Tests;

/// <summary>The worker's model settings as configuration gives them.</summary>
public sealed class WorkerOptionsTests
{
    [Fact]
    public void A_model_in_blob_storage_is_served_under_its_folders_name_and_read_as_Model_Read_says()
    {
        var options = Options(new()
        {
            ["Model:SourceUri"] = "https://account.blob.core.windows.net/models/vicuna-7b-int4/",
            ["Model:Read:ChunkBytes"] = "8388608", ["Model:Read:MaxParallelReads"] = "4",
        });

        Assert.Equal("vicuna-7b-int4", options.ServedName);
        Assert.Equal("https://account.blob.core.windows.net/models/vicuna-7b-int4/", options.ModelLocation);
        Assert.Equal((8L << 20, 4), (options.ModelRead.ChunkBytes, options.ModelRead.MaxParallelReads));
    }

    [Fact]
    public void A_read_of_no_parallel_reads_is_refused_at_startup()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => Options(new() { ["Model:Read:MaxParallelReads"] = "0" }));
        Assert.Equal("MaxParallelReads", error.ParamName);
    }

    private static WorkerOptions Options(Dictionary<string, string?> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetWorkerOptions();
}

namespace VicunaBatch.Worker.Tests;

/// <summary>
/// The compiled <c>vicuna-worker</c> with settings it cannot run with: a setting it cannot start with is one line and
/// exit 2 (not an unhandled exception's stack trace and an abort); a model that does not load fails the worker, exit 1,
/// so a container runtime sees the failure.
/// </summary>
public sealed class WorkerStartupErrorTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly WorkerFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task No_work_queue_configured_is_one_line_and_exit_2()
    {
        using var worker = WorkerProcess.Start(new Dictionary<string, string> { ["Worker__HealthUrls"] = "http://127.0.0.1:0" });

        Assert.Equal(2, await worker.WaitForExitAsync(Timeout));
        Assert.StartsWith("vicuna-worker: no work queue configured: set Local:DataPath (env Local__DataPath)", worker.Output);
        Assert.Single(worker.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task An_option_out_of_range_names_itself_and_its_value()
    {
        using var worker = WorkerProcess.Start(new Dictionary<string, string>
        {
            ["Local__DataPath"] = _folder.DataPath, ["Worker__HealthUrls"] = "http://127.0.0.1:0", ["Engine__CudaGraphs"] = "On",
        });

        Assert.Equal(2, await worker.WaitForExitAsync(Timeout));
        Assert.Equal("vicuna-worker: CudaGraphs on: CUDA graphs need the CUDA device", worker.Output.Trim());
    }

    [Fact]
    public async Task The_removed_MaxDeliveries_setting_says_what_replaced_it()
    {
        using var worker = WorkerProcess.Start(new Dictionary<string, string>
        {
            ["Local__DataPath"] = _folder.DataPath, ["Worker__HealthUrls"] = "http://127.0.0.1:0", ["Worker__MaxDeliveries"] = "4",
        });

        Assert.Equal(2, await worker.WaitForExitAsync(Timeout));
        Assert.StartsWith("vicuna-worker: Worker:MaxDeliveries is gone: a shard is now poison only after Worker:MaxDeliveriesWithoutProgress", worker.Output.Trim());
    }

    [Fact]
    public async Task A_model_that_does_not_load_fails_the_worker_with_exit_1()
    {
        var missing = Path.Combine(_folder.DataPath, "no-such-model");
        using var worker = WorkerProcess.Start(new Dictionary<string, string>
        {
            ["Local__DataPath"] = _folder.DataPath, ["Worker__HealthUrls"] = "http://127.0.0.1:0", ["Model__Path"] = missing,
        });

        Assert.Equal(1, await worker.WaitForExitAsync(Timeout));
        Assert.Contains($"worker failed: model package folder not found: {missing}", worker.Output);
    }

    [Fact]
    public async Task A_model_in_blob_storage_without_the_azure_transport_fails_the_worker_naming_both_settings()
    {
        using var worker = WorkerProcess.Start(new Dictionary<string, string>
        {
            ["Local__DataPath"] = _folder.DataPath, ["Worker__HealthUrls"] = "http://127.0.0.1:0",
            ["Model__SourceUri"] = "https://account.blob.core.windows.net/models/tiny",
        });

        Assert.Equal(1, await worker.WaitForExitAsync(Timeout));
        Assert.Contains("worker failed: Model:SourceUri https://account.blob.core.windows.net/models/tiny needs the Azure transport (the storage account it is in); locally set Model:Path", worker.Output);
    }
}

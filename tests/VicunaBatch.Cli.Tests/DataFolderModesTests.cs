using System.Text.Json;
using VicunaBatch.Local.Tests;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// The data folders of <c>serve</c> and <c>run</c> as the compiled program leaves them (issue 22, item 7): the folder
/// 0700, every secret file in it 0600; a run's results folder and files keep the modes of the user's umask.
/// </summary>
public sealed class DataFolderModesTests : IDisposable
{
    private const string ApiKey = "vb-test-key-modes-41c2e9";
    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [UnixFact]
    public async Task Serve_makes_its_data_folder_0700_and_its_secret_files_0600()
    {
        var data = Path.Combine(_folder.Root, "data");
        using var serve = await ServeProcess.StartAsync(_folder.Root, data, ApiKey);
        var fileId = await serve.UploadAsync(["{\"custom_id\":\"a\",\"prompt\":\"hi\",\"max_tokens\":2}"]);
        var batch = await serve.CreateBatchAsync(new
        {
            input_file_id = fileId, endpoint = "/v1/completions", completion_window = "24h",
            webhook = new { url = "http://127.0.0.1:9/hook" }, // its secret is generated and stored with the batch
        });
        var batchId = batch.GetProperty("id").GetString()!;
        await serve.WaitForBatchEndAsync(batchId, TimeSpan.FromSeconds(60));
        serve.Process.Kill();

        Assert.Equal("700", UnixModes.Of(data));
        foreach (var secret in new[] { "webhook_secret", "tenant_key", $"blobs/jobs/{batchId}/webhook_secret" })
            Assert.Equal(("600", secret), (UnixModes.Of(Path.Combine(data, secret)), secret));
        AssertPrivate(Path.Combine(data, "blobs"));
    }

    [UnixFact]
    public async Task Serve_on_a_folder_open_to_others_says_so_and_leaves_its_mode()
    {
        var data = Path.Combine(_folder.Root, "shared-data");
        Directory.CreateDirectory(data);
        UnixModes.Set(data, "755");

        using var serve = await ServeProcess.StartAsync(_folder.Root, data, ApiKey);
        serve.Process.Kill();

        Assert.Contains($"the data folder {data} is open to other users (mode 755); its secrets and stores are not, but its queue is: chmod 700 {data}", serve.Logs);
        Assert.Equal("755", UnixModes.Of(data));
        Assert.Equal("600", UnixModes.Of(Path.Combine(data, "webhook_secret")));
    }

    [UnixFact]
    public async Task Run_makes_its_state_folder_0700_and_leaves_the_results_with_the_usual_modes()
    {
        var input = _folder.WriteInput("in.jsonl", ["{\"custom_id\":\"a\",\"prompt\":\"hi\",\"max_tokens\":2}"]);

        var run = await CliProcess.RunAsync(_folder.Root, TimeSpan.FromSeconds(60), "run", input, "--out", _folder.Out);

        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal("completed", JsonDocument.Parse(File.ReadAllText(_folder.JobPath)).RootElement.GetProperty("status").GetString());
        Assert.Equal("700", UnixModes.Of(Path.Combine(_folder.Out, ".state")));
        AssertPrivate(Path.Combine(_folder.Out, ".state", "blobs"));
        Assert.Equal(UnixModes.OfNewFolder(), UnixModes.Of(_folder.Out));
        Assert.Equal(UnixModes.OfNewFile(), UnixModes.Of(_folder.OutputPath));
    }

    /// <summary>Every folder of a data folder's blob store 0700, every file 0600.</summary>
    private static void AssertPrivate(string blobs)
    {
        Assert.Equal("700", UnixModes.Of(blobs));
        foreach (var entry in Directory.EnumerateFileSystemEntries(blobs, "*", SearchOption.AllDirectories))
        {
            var name = Path.GetRelativePath(blobs, entry);
            if (name.EndsWith(".lock", StringComparison.Ordinal)) continue; // an empty lock file holds nothing
            Assert.Equal((Directory.Exists(entry) ? "700" : "600", name), (UnixModes.Of(entry), name));
        }
    }
}

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// How <c>vicuna-batch serve</c> starts. In a folder with many subfolders (a home folder, a data share) it must not
/// watch that tree: ASP.NET Core's default reloads configuration files on change and so puts an inotify watch on every
/// folder under the current one, walking it all before it listens and failing outright past the user's inotify limit.
/// A key too short, or a setting out of range, is one line naming where it came from, not an unhandled exception.
/// </summary>
public sealed class ServeStartupTests : IDisposable
{
    private const string ApiKey = "vb-test-key-startup-3c9e";
    private const int NumFolders = 300;
    private static readonly string TinyModel = Path.Combine(Testing.Checkout.Root, "models", "tiny");
    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Serve_puts_no_watch_on_the_folders_under_where_it_starts()
    {
        for (var i = 0; i < NumFolders; i++) Directory.CreateDirectory(Path.Combine(_folder.Root, "tree", $"d{i / 20}", $"e{i}"));
        using var serve = await ServeProcess.StartAsync(_folder.Root, Path.Combine(_folder.Root, "data"), ApiKey);
        Assert.True((await serve.SendAsync(HttpMethod.Get, "/v1/batches")).IsSuccessStatusCode);
        // and it says where the API is, in the form the OpenAI SDK takes
        var serving = $"serving the batch API at {serve.Http.BaseAddress!.ToString().TrimEnd('/')}/v1 (the OpenAI base URL)";
        for (var i = 0; i < 100 && !serve.Logs.Contains(serving); i++) await Task.Delay(50);
        Assert.Contains(serving, serve.Logs);

        // each inotify watch is one "inotify wd:" line in the fdinfo of the descriptor that holds it
        var watches = Directory.GetFiles($"/proc/{serve.Process.ProcessId}/fdinfo")
            .Sum(f => { try { return File.ReadLines(f).Count(l => l.StartsWith("inotify wd:", StringComparison.Ordinal)); } catch (IOException) { return 0; } });
        Assert.True(watches < NumFolders / 10, $"serve holds {watches} inotify watches for a working folder of {NumFolders} subfolders");
    }

    [Theory]
    [InlineData(new[] { "--port", "70000" }, "vicuna-batch: --port 70000: must be in [0, 65535] (0 = any free port)")]
    [InlineData(new[] { "--requests-per-shard", "0" }, "vicuna-batch: --requests-per-shard 0: must be at least 1")]
    [InlineData(new[] { "--max-batch-size", "0" }, "vicuna-batch: --max-batch-size 0: 0 (as many KV slots as fit) needs the CUDA device")]
    public async Task A_setting_out_of_range_is_one_line_naming_its_flag_and_makes_no_data_folder(string[] options, string error)
    {
        var data = Path.Combine(_folder.Root, "data");
        using var serve = CliProcess.Start(_folder.Root, ["serve", "--data", data, "--api-key", ApiKey, .. options]);

        Assert.Equal(2, await serve.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(error, serve.Stderr.Trim()); // not the host's "Hosting failed to start" and a stack trace
        Assert.False(Directory.Exists(data), "serve refused for its settings made its data folder");
    }

    [Theory]
    [InlineData(new[] { "--model", "bad name=models/tiny" }, "vicuna-batch: --model bad name=models/tiny: the name 'bad name' must be 1-64 letters, digits, '.', '_' or '-', starting and ending with a letter or digit")]
    [InlineData(new[] { "--model", "a=models/tiny", "--model", "A=models/tiny" }, "vicuna-batch: --model: model \"a\" is named twice (names differing only in case count as one)")]
    public async Task A_model_name_serve_cannot_serve_is_one_line_and_makes_no_data_folder(string[] options, string error)
    {
        var data = Path.Combine(_folder.Root, "data");
        using var serve = CliProcess.Start(_folder.Root, ["serve", "--data", data, "--api-key", ApiKey, .. options]);

        Assert.Equal(2, await serve.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(error, serve.Stderr.Trim());
        Assert.False(Directory.Exists(data), "serve refused for its models made its data folder");
    }

    [Fact]
    public async Task A_second_model_that_cannot_start_stops_serve_naming_it_before_it_listens()
    {
        var broken = Path.Combine(_folder.Root, "broken-model");
        Directory.CreateDirectory(broken);
        foreach (var file in Directory.GetFiles(TinyModel)) File.Copy(file, Path.Combine(broken, Path.GetFileName(file)));
        File.WriteAllText(Path.Combine(broken, "model.onnx"), "not an onnx graph");

        using var serve = CliProcess.Start(_folder.Root, ["serve", "--port", "0", "--data", Path.Combine(_folder.Root, "data"), "--api-key", ApiKey,
            "--model", $"first={TinyModel}", "--model", $"second={broken}"]);

        Assert.Equal(2, await serve.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.StartsWith($"vicuna-batch: model 'second' ({broken}) could not start beside 'first': ", serve.Stderr.Trim().Split('\n')[^1]);
        Assert.DoesNotContain("listening", serve.Stdout);
    }

    [Fact]
    public async Task A_port_another_process_listens_on_is_one_line_and_makes_no_data_folder()
    {
        var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
            var data = Path.Combine(_folder.Root, "data");
            using var serve = CliProcess.Start(_folder.Root, ["serve", "--port", port.ToString(), "--data", data, "--api-key", ApiKey]);

            Assert.Equal(2, await serve.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal($"vicuna-batch: 127.0.0.1:{port} is in use by another process (another serve?): stop it, or give another --port", serve.Stderr.Trim());
            Assert.False(Directory.Exists(data), "serve refused for its port made its data folder");
        }
        finally
        {
            taken.Stop();
        }
    }

    [Theory]
    [InlineData(false, "vicuna-batch: --api-key: an API key must be at least 8 non-blank characters; one given has 5")]
    [InlineData(true, "vicuna-batch: VICUNABATCH_API_KEYS: an API key must be at least 8 non-blank characters; one given has 5")]
    public async Task A_key_too_short_is_a_usage_error_naming_where_it_came_from(bool fromVariable, string error)
    {
        string[] args = ["serve", "--port", "0", "--data", Path.Combine(_folder.Root, "data"), .. fromVariable ? [] : new[] { "--api-key", "short" }];
        var environment = fromVariable ? new Dictionary<string, string> { ["VICUNABATCH_API_KEYS"] = $"{ApiKey},short" } : [];
        using var serve = CliProcess.Start(_folder.Root, environment, args);

        Assert.Equal(2, await serve.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(error, serve.Stderr.Trim());
        Assert.DoesNotContain("short", serve.Stderr); // the key is a secret: not echoed
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using VicunaBatch.Testing;

namespace VicunaBatch.Azure.Tests;

/// <summary>
/// A real Azurite (npm package <c>azurite</c>, pinned in <c>azurite/package.json</c>, installed by tests/run.sh with
/// <c>npm ci</c>, or here when missing) on 127.0.0.1 with free ports and in-memory persistence, started once for the
/// test collection and killed when it is disposed. Tests isolate themselves by container and queue names.
/// </summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    // Azurite's well-known development account (public, documented; it only opens this emulator)
    private const string Account = "devstoreaccount1";
    private const string Key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    private static readonly string Folder = Path.Combine(Checkout.Root, "tests", "VicunaBatch.Azure.Tests", "azurite");
    private Process? _azurite;
    private int _nextName;

    public string ConnectionString { get; private set; } = "";

    public BlobServiceClient Blobs { get; private set; } = null!;

    public QueueServiceClient Queues(QueueMessageEncoding encoding = QueueMessageEncoding.Base64) =>
        new(ConnectionString, new QueueClientOptions { MessageEncoding = encoding });

    /// <summary>A name no other test uses, valid for containers and queues ("t7-results").</summary>
    public string UniqueName(string role) => $"t{Interlocked.Increment(ref _nextName)}-{role}";

    public StorageContainerNames UniqueContainers() => new()
    {
        Inputs = UniqueName("inputs"), Results = UniqueName("results"), Jobs = UniqueName("jobs"),
        Inbox = UniqueName("inbox"), Pipelines = UniqueName("pipelines"),
    };

    public async Task InitializeAsync()
    {
        var script = Path.Combine(Folder, "node_modules", "azurite", "dist", "src", "azurite.js");
        if (!File.Exists(script)) await RunNpmCiAsync();
        var (blobPort, queuePort, tablePort) = FreePorts();
        var start = new ProcessStartInfo("node")
        {
            ArgumentList =
            {
                script, "--blobHost", "127.0.0.1", "--blobPort", $"{blobPort}", "--queueHost", "127.0.0.1", "--queuePort", $"{queuePort}",
                "--tableHost", "127.0.0.1", "--tablePort", $"{tablePort}", "--inMemoryPersistence", "--extentMemoryLimit", "256",
                "--skipApiVersionCheck", "--loose", "--disableTelemetry",
            },
            WorkingDirectory = Folder, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        _azurite = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new System.Text.StringBuilder();
        int numListening = 0;
        void OnLine(object _, DataReceivedEventArgs e)
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (e.Data.Contains("successfully listening") && Interlocked.Increment(ref numListening) == 3) listening.TrySetResult();
        }
        _azurite.OutputDataReceived += OnLine;
        _azurite.ErrorDataReceived += OnLine;
        _azurite.BeginOutputReadLine();
        _azurite.BeginErrorReadLine();
        var exited = _azurite.WaitForExitAsync();
        if (await Task.WhenAny(listening.Task, exited, Task.Delay(TimeSpan.FromSeconds(60))) != listening.Task)
        {
            lock (output) throw new InvalidOperationException($"Azurite did not start on 127.0.0.1:{blobPort}/{queuePort}:\n{output}");
        }
        ConnectionString = $"DefaultEndpointsProtocol=http;AccountName={Account};AccountKey={Key};"
            + $"BlobEndpoint=http://127.0.0.1:{blobPort}/{Account};QueueEndpoint=http://127.0.0.1:{queuePort}/{Account};";
        Blobs = new BlobServiceClient(ConnectionString);
    }

    public async Task DisposeAsync()
    {
        if (_azurite is null) return;
        if (!_azurite.HasExited) _azurite.Kill(entireProcessTree: true);
        await _azurite.WaitForExitAsync();
        _azurite.Dispose();
    }

    private static async Task RunNpmCiAsync()
    {
        using var npm = Process.Start(new ProcessStartInfo("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        {
            WorkingDirectory = Folder, RedirectStandardOutput = true, RedirectStandardError = true,
        }) ?? throw new InvalidOperationException("could not start npm");
        var error = npm.StandardError.ReadToEndAsync();
        await npm.StandardOutput.ReadToEndAsync();
        await npm.WaitForExitAsync();
        if (npm.ExitCode != 0) throw new InvalidOperationException($"npm ci in {Folder} failed ({npm.ExitCode}): {await error}");
    }

    /// <summary>Three ports the system just handed out (held together, so they differ).</summary>
    private static (int, int, int) FreePorts()
    {
        var listeners = Enumerable.Range(0, 3).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        listeners.ForEach(l => l.Start());
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToList();
        listeners.ForEach(l => l.Stop());
        return (ports[0], ports[1], ports[2]);
    }
}

[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "azurite";
}

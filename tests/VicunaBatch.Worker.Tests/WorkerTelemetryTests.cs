using System.Net;
using System.Text;
using Microsoft.Extensions.Configuration;
using VicunaBatch.Testing;

namespace VicunaBatch.Worker.Tests;

/// <summary>The worker exports its metrics over OTLP/HTTP to a collector; here a real HTTP receiver on 127.0.0.1.</summary>
public sealed class WorkerTelemetryTests : IDisposable
{
    private readonly WorkerFolder _folder = new();

    [Fact]
    public async Task Metrics_reach_an_otlp_receiver_with_the_worker_instruments()
    {
        using var receiver = new HttpListener();
        var port = LoopbackPorts.Free();
        receiver.Prefixes.Add($"http://127.0.0.1:{port}/");
        receiver.Start();
        await _folder.SubmitAsync(Enumerable.Range(0, 8).Select(i => WorkerFolder.Prompt($"r{i}", 4)));

        await using var app = WorkerHost.Build([], configuration => configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Local:DataPath"] = _folder.DataPath,
            ["Worker:HealthUrls"] = "http://127.0.0.1:0",
            ["Worker:PollIntervalMs"] = "20",
            ["Input:RequestsPerShard"] = "8",
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://127.0.0.1:{port}",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "200",
        }));
        await app.StartAsync();
        await _folder.WaitForSettledAsync(1, TimeSpan.FromSeconds(60));

        // protobuf keeps names as UTF-8: read exports (one every 200 ms) until every instrument has appeared in one
        var names = new[] { "output_tokens", "requests", "time_to_first_token", "queue_lag", "batch_occupancy", "kv_slots_in_use", "waiting_requests", "shards" }
            .Select(n => $"vicunabatch.worker.{n}").ToList();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var seen = new HashSet<string>();
        var paths = new HashSet<string>();
        var serviceNamed = false;
        while (seen.Count < names.Count)
        {
            var context = await receiver.GetContextAsync().WaitAsync(timeout.Token);
            paths.Add(context.Request.Url!.AbsolutePath);
            string body;
            using (var reader = new StreamReader(context.Request.InputStream, Encoding.Latin1)) body = await reader.ReadToEndAsync();
            context.Response.StatusCode = 200;
            context.Response.Close();
            seen.UnionWith(names.Where(body.Contains));
            serviceNamed |= body.Contains("vicuna-worker"); // service.name
        }
        Assert.Equal(["/v1/metrics"], paths);
        Assert.True(serviceNamed);
        await app.StopAsync();
    }

    public void Dispose() => _folder.Dispose();
}

using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Services;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Worker.Tests;

/// <summary>The worker host in this process, on the CPU and the embedded tiny model, against the embedded queue: the
/// same WorkerService, ShardPump and ShardProcessor that run on the GPU against Service Bus.</summary>
public sealed class WorkerHostTests : IDisposable
{
    private readonly WorkerFolder _folder = new();

    [Fact]
    public async Task Worker_drains_a_job_publishes_each_shard_once_and_the_finalizer_completes_it()
    {
        // 38 valid requests in 5 shards of 8 lines, and 2 broken lines that validation rejects
        var lines = Enumerable.Range(0, 38).Select(i => WorkerFolder.Prompt($"req-{i}", 4 + i % 5)).ToList();
        lines.Insert(10, "{not json");
        lines.Insert(25, """{"custom_id":"no-prompt"}""");
        var job = await _folder.SubmitAsync(lines);
        Assert.Equal(5, (await _folder.WorkQueue.CountAsync()));

        await using var app = BuildWorker();
        using var measurements = new MetricsCapture(app.Services.GetRequiredService<WorkerMetrics>().Meter);
        await app.StartAsync();
        var events = await _folder.WaitForSettledAsync(5, TimeSpan.FromSeconds(60));

        Assert.Equal([0, 1, 2, 3, 4], events.Select(e => e.ShardIndex).Order());
        Assert.All(events, e => Assert.Equal(job.Id, e.JobId));
        Assert.All((await _folder.ReadShardStatesAsync(job.Id)).Values, state => Assert.Equal(ShardState.Completed, state));
        Assert.Equal(0, await _folder.WorkQueue.CountAsync());

        var finalized = await _folder.FinalizeAsync(job.Id);
        Assert.Equal(FinalizeStatus.Finalized, finalized.Status);
        Assert.Equal(JobStatus.Completed, finalized.Job.Status);
        var output = await _folder.ReadLinesAsync(JobIds.OutputBlob(job.Id));
        var errors = await _folder.ReadLinesAsync(JobIds.ErrorsBlob(job.Id));
        Assert.Equal(Enumerable.Range(0, 38).Select(i => $"req-{i}").Order(), output.Select(l => l.GetProperty("custom_id").GetString()).Order());
        Assert.Equal(2, errors.Count);
        Assert.Equal(38, (await _folder.ReadCheckpointedIdsAsync(job.Id)).Distinct().Count());
        Assert.Empty((await _folder.CheckAsync(job.Id, lines)).Problems);

        // the metrics saw what the job says was generated
        Assert.Equal(finalized.Job.Usage.OutputTokens, measurements.Sum("vicunabatch.worker.output_tokens"));
        Assert.Equal(38, measurements.Sum("vicunabatch.worker.requests"));
        Assert.Equal(5, measurements.Sum("vicunabatch.worker.shards"));
        Assert.Equal(38, measurements.Count("vicunabatch.worker.time_to_first_token"));
        Assert.Equal(5, measurements.Count("vicunabatch.worker.queue_lag"));
        await app.StopAsync();
    }

    [Fact]
    public async Task A_worker_of_two_engines_feeds_both_from_its_queue_and_reports_each_one()
    {
        var lines = Enumerable.Range(0, 48).Select(i => WorkerFolder.Prompt($"req-{i}", 4 + i % 5)).ToList();
        var job = await _folder.SubmitAsync(lines); // 6 shards of 8

        // one shard held at a time by each engine: the second engine takes those the first does not hold
        await using var app = BuildWorker(("Engine:CpuEngines", "2"), ("Worker:MaxConcurrentShards", "1"));
        using var measurements = new MetricsCapture(app.Services.GetRequiredService<WorkerMetrics>().Meter);
        await app.StartAsync();
        var health = await ReadyHealthAsync(app);
        var events = await _folder.WaitForSettledAsync(6, TimeSpan.FromSeconds(90));

        Assert.Equal(["engine 0", "engine 1"], health.GetProperty("engines").EnumerateArray().Select(e => e.GetProperty("engine").GetString()));
        Assert.Equal([0, 1, 2, 3, 4, 5], events.Select(e => e.ShardIndex).Order());
        var finalized = await _folder.FinalizeAsync(job.Id);
        Assert.Equal((JobStatus.Completed, 48), (finalized.Job.Status, finalized.Job.RequestCounts.Completed));
        Assert.Equal(48, (await _folder.ReadCheckpointedIdsAsync(job.Id)).Distinct().Count());
        Assert.Empty((await _folder.CheckAsync(job.Id, lines)).Problems);
        // each engine's tokens under its own tag, and together what the job says was generated
        var byEngine = new[] { "engine 0", "engine 1" }.Select(e => measurements.Sum("vicunabatch.worker.output_tokens", e)).ToList();
        Assert.All(byEngine, tokens => Assert.True(tokens > 0, "both engines generated"));
        Assert.Equal(finalized.Job.Usage.OutputTokens, byEngine.Sum());
        await app.StopAsync();
    }

    [Fact]
    public void Engine_gpus_on_the_cpu_and_gpus_that_are_no_numbers_are_refused_at_startup()
    {
        Assert.Equal("Engine:Gpus chooses GPUs: it needs Engine:Device Cuda (on the CPU the model runs on one engine)",
            Assert.Throws<ArgumentException>(() => BuildWorker(("Engine:Gpus", "0"))).Message);
        Assert.Equal("Engine:Gpus \"0,one\": GPU numbers separated by commas (0,1)",
            Assert.Throws<ArgumentException>(() => BuildWorker(("Engine:Device", "Cuda"), ("Engine:Gpus", "0,one"))).Message);
        Assert.Equal("Engine:CpuEngines is for the CPU; with Engine:Device Cuda the model runs on one engine a GPU: choose them with Engine:Gpus",
            Assert.Throws<ArgumentException>(() => BuildWorker(("Engine:Device", "Cuda"), ("Engine:CpuEngines", "2"))).Message);
        Assert.Equal("Engine:CpuEngines 0: must be at least 1",
            WorkerHost.StartupError(Assert.Throws<ArgumentOutOfRangeException>(() => BuildWorker(("Engine:CpuEngines", "0")))));
    }

    [Fact]
    public async Task Engine_gpus_choose_one_engine_a_gpu_among_those_present_and_name_them_when_one_is_not()
    {
        await using var app = BuildWorker(("Engine:Device", "Cuda"), ("Engine:Gpus", "0,2"), ("Engine:Gpu", "3"));
        var engines = app.Services.GetRequiredService<WorkerEngines>();

        Assert.Equal([0, 2], engines.Gpus);
        Assert.Equal([0, 2], engines.Each(() => 3).Select(e => e.Gpu));
        Assert.Equal("Engine:Gpus 0,2: there is no GPU 2: this machine has GPUs 0 and 1",
            Assert.Throws<InvalidOperationException>(() => engines.Each(() => 2)).Message);
        Assert.Equal(0, app.Services.GetRequiredService<EngineOptions>().Gpu); // not a setting: Engine:Gpu binds nothing
        await using var every = BuildWorker(("Engine:Device", "Cuda"));
        Assert.Equal([0, 1, 2, 3], every.Services.GetRequiredService<WorkerEngines>().Each(() => 4).Select(e => e.Gpu));
        Assert.Equal("Engine:Device Cuda: no CUDA GPU is visible to this process (the driver, or CUDA_VISIBLE_DEVICES)",
            Assert.Throws<InvalidOperationException>(() => every.Services.GetRequiredService<WorkerEngines>().Each(() => 0)).Message);
    }

    private static async Task<JsonElement> ReadyHealthAsync(WebApplication app)
    {
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };
        for (var i = 0; ; i++)
        {
            var body = JsonDocument.Parse(await http.GetStringAsync("/healthz")).RootElement.Clone();
            if (body.GetProperty("state").GetString() == "ready" || i == 1200) return body;
            await Task.Delay(50);
        }
    }

    [Theory]
    [InlineData(null, CudaGraphUse.Auto)]
    [InlineData("Off", CudaGraphUse.Off)]
    [InlineData("on", CudaGraphUse.On)]
    public async Task Engine_cuda_graphs_bind_from_configuration_by_name(string? setting, CudaGraphUse expected)
    {
        // Engine__CudaGraphs on Azure; "on" is refused only when the engine opens on the CPU, not at binding
        await using var app = setting is null
            ? BuildWorker(("Engine:Device", "Cuda"))
            : BuildWorker(("Engine:Device", "Cuda"), ("Engine:CudaGraphs", setting));
        Assert.Equal(expected, app.Services.GetRequiredService<EngineOptions>().CudaGraphs);
    }

    [Fact]
    public async Task Configuration_files_are_read_once_not_watched()
    {
        // a watch for reloads would put an inotify watch on every folder under the working folder (ServeStartupTests)
        await using var app = BuildWorker();
        Assert.Equal("false", app.Configuration["hostBuilder:reloadConfigOnChange"]);
    }

    [Fact]
    public void Engine_cuda_graphs_on_with_the_cpu_is_refused_at_startup()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => BuildWorker(("Engine:CudaGraphs", "On")));
        Assert.Contains("CUDA graphs need the CUDA device", error.Message);
    }

    [Fact]
    public async Task Healthz_answers_over_http_with_the_state_and_model()
    {
        await using var app = BuildWorker();
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };
        JsonElement body = default;
        for (var i = 0; i < 200; i++)
        {
            using var response = await http.GetAsync("/healthz");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
            if (body.GetProperty("state").GetString() == "ready") break;
            await Task.Delay(50);
        }
        Assert.Equal("ready", body.GetProperty("state").GetString());
        Assert.Equal("healthy", body.GetProperty("status").GetString());
        Assert.Equal("tiny", body.GetProperty("model").GetString());
        Assert.StartsWith("http://127.0.0.1:", app.Urls.Single());
        await app.StopAsync();
    }

    [Fact]
    public async Task A_model_that_cannot_load_stops_the_worker_with_exit_code_1_and_the_reason()
    {
        await using var app = BuildWorker(("Model:Path", Path.Combine(_folder.DataPath, "no-such-model")));
        try
        {
            await app.StartAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await app.WaitForShutdownAsync(timeout.Token); // the worker stops its own host: a container restarts it

            Assert.Equal(1, Environment.ExitCode);
            var (healthy, body) = app.Services.GetRequiredService<WorkerHealth>().Check();
            Assert.False(healthy);
            Assert.Equal("failed", body["state"]!.GetValue<string>());
            Assert.Contains("no-such-model", body["reason"]!.GetValue<string>());
            Assert.Equal(0, await _folder.WorkQueue.CountAsync());
        }
        finally
        {
            Environment.ExitCode = 0; // set for the worker's process; this one is the test runner
        }
    }

    private WebApplication BuildWorker(params (string Key, string Value)[] overrides)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Local:DataPath"] = _folder.DataPath,
            ["Worker:HealthUrls"] = "http://127.0.0.1:0",
            ["Worker:PollIntervalMs"] = "20",
            ["Worker:DrainSeconds"] = "5",
            ["Engine:NumThreads"] = "1",
            ["Input:RequestsPerShard"] = "8",
        };
        foreach (var (key, value) in overrides) settings[key] = value;
        return WorkerHost.Build([], configuration => configuration.AddInMemoryCollection(settings));
    }

    public void Dispose() => _folder.Dispose();

    /// <summary>Every measurement of one worker's meter while the test runs (other tests' workers have their own).</summary>
    private sealed class MetricsCapture : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly List<(string Name, double Value, string? Engine)> _values = [];

        public MetricsCapture(Meter meter)
        {
            Assert.Equal(WorkerMetrics.MeterName, meter.Name);
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter == meter) listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => { lock (_values) _values.Add((i.Name, v, EngineOf(tags))); });
            _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => { lock (_values) _values.Add((i.Name, v, EngineOf(tags))); });
            _listener.Start();
        }

        public double Sum(string name) { lock (_values) return _values.Where(v => v.Name == name).Sum(v => v.Value); }

        /// <summary>The measurements of one engine (its <c>engine</c> tag).</summary>
        public double Sum(string name, string engine) { lock (_values) return _values.Where(v => v.Name == name && v.Engine == engine).Sum(v => v.Value); }

        private static string? EngineOf(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (var tag in tags) if (tag.Key == "engine") return tag.Value as string;
            return null;
        }

        public int Count(string name) { lock (_values) return _values.Count(v => v.Name == name); }

        public void Dispose() => _listener.Dispose();
    }
}

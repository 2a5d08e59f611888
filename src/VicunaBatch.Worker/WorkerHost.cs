using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using VicunaBatch.Azure;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Local;

namespace VicunaBatch.Worker;

/// <summary>
/// Builds the worker process: <see cref="WorkerService"/> over the transport that configuration names, and
/// <c>GET /healthz</c>. Local transport: <c>Local:DataPath</c> (the SQLite queue <c>shards</c>, folder blob and
/// checkpoint stores, and the control queue <c>shard-done</c>, laid out as <c>vicuna-batch serve --data</c> lays them).
/// </summary>
public static class WorkerHost
{
    /// <summary>The SQLite queue that receives <see cref="ShardDoneEvent"/>s locally.</summary>
    public const string LocalShardDoneQueue = "shard-done";

    /// <summary>
    /// The host's own arguments first: configuration files are read once, not watched. ASP.NET Core's default reloads
    /// them on change, which puts an inotify watch on every folder under the content root (the current folder): 4,648
    /// watches for a <c>serve</c> started in a /tmp of 4,883 entries, a walk of the whole tree before it listens, and a
    /// crash where the tree has more folders than the user's inotify limit. Later arguments still override it.
    /// </summary>
    public static string[] HostArguments(string[] args) => ["--hostBuilder:reloadConfigOnChange=false", .. args];

    /// <summary>
    /// A setting the worker cannot start with, as one line: an option out of range reads as its name and value
    /// (<c>CudaGraphs On: CUDA graphs need the CUDA device</c>), not as the exception's two lines.
    /// </summary>
    public static string StartupError(Exception e) =>
        e is ArgumentOutOfRangeException { ParamName: { } name } outOfRange ? OutOfRangeText.Describe(name, outOfRange) : e.Message;

    public static WebApplication Build(string[] args, Action<IConfigurationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder(HostArguments(args));
        configure?.Invoke(builder.Configuration);
        builder.Services.AddVicunaBatchWorker(builder.Configuration);
        var options = builder.Configuration.GetWorkerOptions();
        builder.WebHost.UseUrls(options.HealthUrls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(options.DrainSeconds + 15));
        var app = builder.Build();
        app.MapGet("/healthz", (WorkerHealth health) =>
        {
            var (healthy, body) = health.Check();
            return Results.Json(body, statusCode: healthy ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        });
        return app;
    }

    /// <summary>Options from <c>Worker</c>, <c>Model:Path</c>, validated.</summary>
    public static WorkerOptions GetWorkerOptions(this IConfiguration configuration)
    {
        var options = configuration.GetSection("Worker").Get<WorkerOptions>() ?? new WorkerOptions();
        if (configuration["Model:Path"] is { Length: > 0 } modelPath) options.ModelPath = modelPath;
        if (configuration["Model:SourceUri"] is { Length: > 0 } source) options.ModelSourceUri = new Uri(source);
        options.Validate();
        return options;
    }

    /// <summary>The worker's services: options, health, metrics, the transport, the loop.</summary>
    public static IServiceCollection AddVicunaBatchWorker(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetWorkerOptions();
        var engine = configuration.GetSection("Engine").Get<EngineOptions>() ?? new EngineOptions();
        engine.Validate();
        services.AddSingleton(options);
        services.AddSingleton(engine);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<WorkerHealth>();
        services.AddMetrics();
        services.AddSingleton<WorkerMetrics>();
        services.AddWorkerTelemetry(configuration);
        AddTransport(services, configuration);
        services.AddHostedService<WorkerService>();
        return services;
    }

    /// <summary><c>Local:DataPath</c>: the embedded parts; otherwise the Azure parts from the <c>Storage</c> and
    /// <c>ServiceBus</c> sections (as infra/bicep/modules/workers.bicep sets them), with the worker's managed identity.</summary>
    private static void AddTransport(IServiceCollection services, IConfiguration configuration)
    {
        if (configuration["Local:DataPath"] is { Length: > 0 } dataPath)
        {
            var lockSeconds = configuration.GetValue("Local:LockSeconds", 60);
            if (lockSeconds < 1) throw new ArgumentOutOfRangeException("Local:LockSeconds", lockSeconds, "must be >= 1");
            services.AddSingleton(sp => LocalTransport(Path.GetFullPath(dataPath), sp.GetRequiredService<TimeProvider>(), TimeSpan.FromSeconds(lockSeconds)));
            return;
        }
        try
        {
            services.AddAzureTransport(configuration);
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException(
                $"no work queue configured: set Local:DataPath (env Local__DataPath) to a vicuna-batch data folder, or the Azure settings ({e.Message})", e);
        }
        services.AddSingleton(sp => new WorkerTransport(sp.GetRequiredService<IWorkQueue>(), sp.GetRequiredService<IBlobStore>(),
            sp.GetRequiredService<ICheckpointStore>(), sp.GetRequiredService<ControlPlaneQueues>().ShardDone,
            sp.GetRequiredService<global::Azure.Storage.Blobs.BlobServiceClient>()));
    }

    /// <summary>The embedded parts in <paramref name="dataPath"/>, shared with a submitter on the same folder. A shard
    /// message stays locked to its receiver for <paramref name="lockDuration"/> (<c>Local:LockSeconds</c>, default 60 s)
    /// past each receive or renewal; a worker that dies leaves it locked that long.</summary>
    public static WorkerTransport LocalTransport(string dataPath, TimeProvider time, TimeSpan? lockDuration = null)
    {
        Directory.CreateDirectory(dataPath);
        var database = Path.Combine(dataPath, "queue.db");
        var shards = new SqliteWorkQueueOptions { DatabasePath = database };
        if (lockDuration is { } duration) shards = new SqliteWorkQueueOptions { DatabasePath = database, LockDuration = duration };
        return new WorkerTransport(
            new SqliteWorkQueue(shards, time),
            new FolderBlobStore(new FolderBlobStoreOptions { RootPath = Path.Combine(dataPath, "blobs") }),
            new FolderCheckpointStore(new FolderCheckpointStoreOptions { RootPath = Path.Combine(dataPath, "checkpoints") }),
            new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = database, QueueName = LocalShardDoneQueue }, time));
    }
}

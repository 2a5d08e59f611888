using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using VicunaBatch.Azure;
using VicunaBatch.Core.Formats;
using VicunaBatch.Execution;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Local;

namespace VicunaBatch.Worker;

/// <summary>
/// Builds the worker process: <see cref="WorkerService"/> over the transport that configuration names, and
/// <c>GET /healthz</c>. Local transport: <c>Local:DataPath</c>, a data folder as <c>vicuna-batch serve --data</c> uses
/// it (<see cref="LocalDataFolder"/>): its shard-done events reach serve's finalizer, so any number of workers (one per
/// GPU, say) and one serve share a folder.
/// </summary>
public static class WorkerHost
{
    /// <summary>
    /// A setting the worker cannot start with, as one line: an option out of range reads as its name and value
    /// (<c>CudaGraphs On: CUDA graphs need the CUDA device</c>), not as the exception's two lines.
    /// </summary>
    public static string StartupError(Exception e) =>
        e is ArgumentOutOfRangeException { ParamName: { } name } outOfRange ? OutOfRangeText.Describe(name, outOfRange) : e.Message;

    public static WebApplication Build(string[] args, Action<IConfigurationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder(HostArguments.With(args));
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

    /// <summary>Options from <c>Worker</c> and <c>Model</c> (<c>Path</c>, <c>SourceUri</c>, <c>Read</c>, <c>Name</c>), validated.</summary>
    public static WorkerOptions GetWorkerOptions(this IConfiguration configuration)
    {
        // renamed when restarts stopped counting against a shard: a value set for the old meaning is not silently ignored
        if (configuration["Worker:MaxDeliveries"] is not null)
            throw new InvalidOperationException("Worker:MaxDeliveries is gone: a shard is now poison only after Worker:MaxDeliveriesWithoutProgress " +
                "deliveries in a row checkpoint no request (restarts that make progress never count); set that instead");
        var options = configuration.GetSection("Worker").Get<WorkerOptions>() ?? new WorkerOptions();
        if (configuration["Model:Path"] is { Length: > 0 } modelPath) options.ModelPath = modelPath;
        if (configuration["Model:SourceUri"] is { Length: > 0 } source) options.ModelSourceUri = new Uri(source);
        configuration.GetSection("Model:Read").Bind(options.ModelRead);
        if (configuration["Model:Name"] is { Length: > 0 } name) options.ModelName = name;
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
        services.AddSingleton(WorkerEngines.From(configuration, engine));
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<WorkerHealth>();
        services.AddMetrics();
        services.AddSingleton<WorkerMetrics>();
        services.AddWorkerTelemetry(configuration);
        AddTransport(services, configuration, options.ServedName);
        services.AddHostedService<WorkerService>();
        return services;
    }

    /// <summary><c>Local:DataPath</c>: the embedded parts; otherwise the Azure parts from the <c>Storage</c> and
    /// <c>ServiceBus</c> sections (as infra/bicep/modules/workers.bicep sets them), with the worker's managed identity.
    /// Either way the engine chain gets its <see cref="ShardPorts"/> from the ports registered.</summary>
    private static void AddTransport(IServiceCollection services, IConfiguration configuration, string model)
    {
        if (configuration["Local:DataPath"] is { Length: > 0 } dataPath)
        {
            // a shard message stays locked to its receiver this long past each receive or renewal while the receiver lives
            var lockSeconds = configuration.GetValue("Local:LockSeconds", 60);
            if (lockSeconds < 1) throw new ArgumentOutOfRangeException("Local:LockSeconds", lockSeconds, "must be >= 1");
            services.AddLocalTransport(Path.GetFullPath(dataPath), local => local.WorkLockDuration = TimeSpan.FromSeconds(lockSeconds));
        }
        else
        {
            try
            {
                services.AddAzureTransport(configuration);
            }
            catch (ArgumentException e)
            {
                throw new InvalidOperationException(
                    $"no work queue configured: set Local:DataPath (env Local__DataPath) to a vicuna-batch data folder, or the Azure settings ({e.Message})", e);
            }
        }
        services.AddShardPorts(model);
    }
}

using System.CommandLine;
using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VicunaBatch.Api;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Execution;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Local;

namespace VicunaBatch.Cli;

/// <summary><c>vicuna-batch serve</c>: the OpenAI-compatible batch API, a worker and the finalizer in one process on 127.0.0.1.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var modelOptions = new ModelOptions();
        var port = new Option<int>("--port") { Description = "Port on 127.0.0.1.", DefaultValueFactory = _ => 8080 };
        var data = new Option<DirectoryInfo?>("--data") { Description = "Queue, blobs and checkpoints. Default: ./vicuna-data" };
        var keys = new Option<string[]>("--api-key")
        {
            Description = "Accepted bearer key (repeatable; each key is a tenant). Every user's ps shows it: prefer --api-key-file or VICUNABATCH_API_KEYS "
                + "(comma-separated). None of the three: one is generated and printed.",
        };
        var keyFile = new Option<FileInfo?>(ApiKeyFile.Flag)
        {
            Description = "File of accepted bearer keys, one a line (blank lines and # comments skipped); refused when group or others may read it (chmod 600).",
        };
        var pipelines = new Option<DirectoryInfo?>("--pipelines") { Description = "Run the pipeline definitions (*.json) in this folder on their schedules." };
        var perShard = new Option<int>("--requests-per-shard") { Description = "Requests per queue message.", DefaultValueFactory = _ => new InputOptions().RequestsPerShard };
        var maxLineBytes = InputFlags.MaxLineBytes();
        var command = new Command("serve", "Serve the batch API with a local worker on 127.0.0.1.") { port, data, keys, keyFile, pipelines, perShard, maxLineBytes };
        modelOptions.AddTo(command, served: true, engines: true);
        command.SetAction(async (ParseResult r, CancellationToken cancellationToken) =>
        {
            var settings = new ServeSettings(
                r.GetValue(port), modelOptions.ServedModels(r),
                r.GetValue(data)?.FullName ?? Path.GetFullPath("vicuna-data"), r.GetValue(keys) ?? [])
            {
                Engine = modelOptions.EngineOptions(r),
                Engines = modelOptions.EachEngine(r),
                PipelinesPath = r.GetValue(pipelines)?.FullName,
                ApiKeyFile = r.GetValue(keyFile)?.FullName,
                Input = new InputOptions { RequestsPerShard = r.GetValue(perShard), MaxLineBytes = r.GetValue(maxLineBytes) },
            };
            await using var app = ServeHost.Build(settings);
            if (settings.ApiKeys.Count > 0) Console.Error.WriteLine(ApiKeyFile.CommandLineWarning(ServeHost.ApiKeysVariable));
            app.Lifetime.ApplicationStarted.Register(() => Console.Error.WriteLine(
                $"serving the batch API at {app.Urls.FirstOrDefault()}/v1 (the OpenAI base URL) with {ServeSettings.Describe(settings.Models)}; " +
                $"data in {settings.DataPath}; Ctrl+C stops"));
            try
            {
                await app.RunAsync(cancellationToken);
            }
            catch (IOException e) when (e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
            {
                throw new UsageException(ServeHost.PortInUseMessage(settings.Port)); // taken since Build looked
            }
            return 0;
        });
        return command;
    }
}

/// <summary>
/// What <c>serve</c> runs on. <see cref="Port"/> 0 picks a free port (tests read it from the server). <see cref="Models"/>:
/// each gets its own engine and work queue; the first is the default, the model of lines that name none.
/// </summary>
public sealed record ServeSettings(int Port, IReadOnlyList<ModelChoice> Models, string DataPath, IReadOnlyList<string> ApiKeys)
{
    /// <summary>"the model tiny (DIR)", or "the models a (DIR), b (DIR)".</summary>
    public static string Describe(IReadOnlyList<ModelChoice> models) =>
        $"the model{(models.Count == 1 ? "" : "s")} {string.Join(", ", models.Select(m => $"{m.Name} ({m.Path})"))}";

    public EngineOptions Engine { get; init; } = new();

    /// <summary>The options of each engine every model runs on, fed from its one queue (one per GPU:
    /// <see cref="ModelOptions.EachEngine"/>); null: one, <see cref="Engine"/>.</summary>
    public IReadOnlyList<EngineOptions>? Engines { get; init; }

    /// <summary><see cref="Engines"/>, or the one <see cref="Engine"/>.</summary>
    public IReadOnlyList<EngineOptions> EachEngine => Engines ?? [Engine];
    public RequestDefaults Defaults { get; init; } = new();
    /// <summary>Shards the worker holds at once; more while its engine wants work (<see cref="EngineWorkerOptions.OneMachine"/>).</summary>
    public int Workers { get; init; } = 4;
    public InputOptions Input { get; init; } = new();

    /// <summary>Largest accepted upload body, in bytes (<see cref="ApiOptions.MaxUploadBytes"/>; default 200 MiB).</summary>
    public long MaxUploadBytes { get; init; } = new ApiOptions().MaxUploadBytes;

    /// <summary>A file of accepted keys, one a line (<see cref="Cli.ApiKeyFile"/>), beside <see cref="ApiKeys"/>; null: none.</summary>
    public string? ApiKeyFile { get; init; }

    /// <summary>Folder of pipeline definitions run on their schedules (<see cref="PipelineLoop"/>); null: none.</summary>
    public string? PipelinesPath { get; init; }

    /// <summary>Every setting in range, checked before <c>serve</c> makes its data folder or starts anything.</summary>
    public void Validate()
    {
        if (Port is < 0 or > IPEndPoint.MaxPort)
        {
            throw new ArgumentOutOfRangeException(nameof(Port), Port, $"must be in [0, {IPEndPoint.MaxPort}] (0 = any free port)");
        }
        Engine.Validate();
        foreach (var engine in EachEngine) engine.Validate();
        Defaults.Validate();
        new ShardPumpOptions { MaxConcurrentShards = Workers }.Validate();
        Input.Validate();
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxUploadBytes, 1, nameof(MaxUploadBytes));
        if (ServedModels.Problem([.. Models.Select(m => m.Name)]) is { } problem) throw new UsageException($"--model: {problem}");
    }
}

/// <summary>
/// Builds the serve process over <c>--data</c> (<see cref="OneMachine"/>): Kestrel on 127.0.0.1 with the Api, a worker
/// on one engine, and the control plane's loops — the shard-done handler, the webhook deliverer, the sweep.
/// </summary>
public static class ServeHost
{
    public const string ApiKeysVariable = "VICUNABATCH_API_KEYS";
    public const string WebhookSecretVariable = "VICUNABATCH_WEBHOOK_SECRET";

    /// <summary>The error of a port another process listens on (another serve, say): one line, and no data folder made.</summary>
    public static string PortInUseMessage(int port) => $"127.0.0.1:{port} is in use by another process (another serve?): stop it, or give another --port";

    /// <summary>
    /// Refuses a port another process listens on before anything is made, by listening on it for a moment (the host's
    /// own bind failure comes after the data folder and a logged stack trace). A port taken in between still fails,
    /// at the host's bind (see <see cref="ServeCommand"/>).
    /// </summary>
    private static void RefusePortInUse(int port)
    {
        if (port == 0) return;
        var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, port);
        try
        {
            probe.Start();
        }
        catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode == System.Net.Sockets.SocketError.AddressAlreadyInUse)
        {
            throw new UsageException(PortInUseMessage(port));
        }
        finally
        {
            probe.Stop();
        }
    }

    public static WebApplication Build(ServeSettings settings, string[]? args = null)
    {
        settings.Validate();
        foreach (var model in settings.Models) Inference.Package.ModelPackage.Load(model.Path); // a bad package fails before anything listens
        RefusePortInUse(settings.Port);
        var builder = WebApplication.CreateSlimBuilder(HostArguments.With(args ?? []));
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, settings.Port));
        // one line per job and per problem, not one per HTTP request
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        var keys = ApiKeys(settings, builder.Configuration[ApiKeysVariable]);
        if (settings.PipelinesPath is { } pipelinesPath && !Directory.Exists(pipelinesPath))
            throw new UsageException($"--pipelines folder not found: {pipelinesPath}");

        var data = new LocalDataFolder(settings.DataPath);
        if (data.OpenToOthers is { } mode)
            Console.Error.WriteLine($"the data folder {data.Path} is open to other users (mode {mode}); its secrets and stores are not, but its queue is: chmod 700 {data.Path}");
        var services = builder.Services;
        // one serve per data folder (any number of vicuna-workers may share it); held until the app is disposed
        var dataLock = new ServeFolderLock(data.TryTakeExclusive("serve")
            ?? throw new UsageException($"another vicuna-batch serve is using {data.Path} (lock: {data.LockPath("serve")})"));
        services.AddSingleton(_ => dataLock);
        services.AddSingleton(settings);
        services.AddOneMachine(data.Path, settings.Input, [.. settings.Models.Select(m => m.Name)], new WebhookDelivererOptions
        {
            SigningSecret = builder.Configuration[WebhookSecretVariable] is { Length: > 0 } secret ? secret : data.SigningSecret(),
        });
        // first of the hosted services: the tenants' migration (TenantMigration) ends before the worker and the control
        // plane's loops start, so no job of a tenant is finalized while its batches and files move
        services.AddVicunaBatchApi(api =>
        {
            api.ApiKeys.AddRange(keys);
            api.TenantKey = data.TenantKey();
            api.MaxUploadBytes = settings.MaxUploadBytes;
            api.AllowLoopbackWebhooks = true; // the local server may call back to a receiver on this machine
        });
        // loaded as the host starts, before it listens: a large model takes minutes on a CPU, so serve says it is loading
        services.AddSingleton(_ => new ServeEngines(settings.Models, settings.EachEngine));
        services.AddSingleton(sp => sp.GetRequiredService<ServeEngines>().PromptCounter());
        // a version from before models were named left its shards in one queue: the default model carries them on
        services.AddLoop(sp => ct => sp.GetRequiredService<LocalWorkQueues>().MoveUnnamedShardsAsync(settings.Models[0].Name, ct));
        for (int i = 0; i < settings.Models.Count; i++)
        {
            int index = i;
            services.AddLoop(sp => new ServeWorker(sp.GetRequiredService<ServeEngines>().All[index], sp, settings, sp.GetRequiredService<ILogger<ServeWorker>>()).RunAsync);
        }
        // the control plane, as the Functions app runs it on Azure: finalizer, deliverer, sweep
        services.AddLoop(sp => ct => sp.GetRequiredService<ShardDoneHandler>().RunAsync(sp.GetRequiredService<ControlQueues>().ShardDone, cancellationToken: ct));
        services.AddLoop(sp => sp.GetRequiredService<WebhookDeliverer>().RunAsync);
        services.AddLoop(sp => ct => sp.GetRequiredService<JobSweeper>().RunAsync(SweepInterval, ct));
        services.AddLoop(sp => ct => sp.GetRequiredService<FileSweeper>().RunAsync(SweepInterval, ct));
        if (settings.PipelinesPath is not null) services.AddHostedService<PipelineLoop>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

        var app = builder.Build();
        app.Services.GetRequiredService<ServeFolderLock>(); // now owned by the container, released when the app is disposed
        app.MapVicunaBatchApi();
        return app;
    }

    /// <summary>Every minute: jobs past their completion window expire with their partial results (as the Functions timer does).</summary>
    public static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);

    /// <summary>The accepted keys from <c>--api-key</c>, <c>--api-key-file</c> and <see cref="ApiKeysVariable"/>; with none, one generated and printed.</summary>
    private static List<string> ApiKeys(ServeSettings settings, string? variable)
    {
        var fromVariable = (variable ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var fromFile = settings.ApiKeyFile is { } path ? ApiKeyFile.Read(path) : [];
        foreach (var (source, given) in new[] { ("--api-key", settings.ApiKeys), (ApiKeyFile.Flag, fromFile), (ApiKeysVariable, (IReadOnlyList<string>)fromVariable) })
        {
            // the key itself is a secret: its length only
            if (given.FirstOrDefault(k => !ApiOptions.IsUsableKey(k)) is { } tooShort)
            {
                throw new UsageException($"{source}: an API key must be at least {ApiOptions.MinKeyLength} non-blank characters; one given has {tooShort.Trim().Length}");
            }
        }
        var keys = settings.ApiKeys.Concat(fromFile).Concat(fromVariable).Distinct().ToList();
        if (keys.Count == 0)
        {
            keys.Add("vb-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24)));
            Console.Error.WriteLine($"no API key configured (--api-key-file, {ApiKeysVariable} or --api-key); generated one for this run: {keys[0]}");
        }
        return keys;
    }
}

/// <summary>The lock file of a data folder's one serve.</summary>
internal sealed class ServeFolderLock(FileStream held) : IDisposable
{
    public void Dispose() => held.Dispose();
}

/// <summary>A model's worker: each of its engines (one per GPU) fed by N shards from its queue, more while that engine
/// wants work (<see cref="EngineWorkers"/>); each settled shard is announced on the shard-done queue, where serve's
/// finalizer (or any other's) reads it. Stopping abandons the shards in flight (checkpointed requests are not redone).</summary>
internal sealed class ServeWorker(ServedEngine engine, IServiceProvider services, ServeSettings settings, ILogger<ServeWorker> logger)
{
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var options = EngineWorkerOptions.OneMachine(settings.Workers, settings.Defaults, settings.Input);
        await using var worker = new EngineWorkers(engine.Models, services.ShardPortsOf(engine.Name), options, services.GetRequiredService<TimeProvider>(), logger);
        if (engine.Models.Count > 1)
            logger.LogInformation("model {Model} runs on {NumEngines} engines: {Engines}", engine.Name, engine.Models.Count, string.Join(", ", worker.Labels));
        try
        {
            await worker.RunAsync(_ => Task.FromResult(false), cancellationToken: stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }
}

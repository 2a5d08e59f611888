using System.CommandLine;
using System.Net;
using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VicunaBatch.Api;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Text;
using VicunaBatch.Inference;
using VicunaBatch.Local;
using VicunaBatch.Worker;

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
            Description = "Accepted bearer key (repeatable; each key is a tenant). Also VICUNABATCH_API_KEYS (comma-separated). None: one is generated and printed.",
        };
        var pipelines = new Option<DirectoryInfo?>("--pipelines") { Description = "Run the pipeline definitions (*.json) in this folder on their schedules." };
        var perShard = new Option<int>("--requests-per-shard") { Description = "Requests per queue message.", DefaultValueFactory = _ => new InputOptions().RequestsPerShard };
        var command = new Command("serve", "Serve the batch API with a local worker on 127.0.0.1.") { port, data, keys, pipelines, perShard };
        modelOptions.AddTo(command);
        command.SetAction(async (ParseResult r, CancellationToken cancellationToken) =>
        {
            var settings = new ServeSettings(
                r.GetValue(port), r.GetValue(modelOptions.Model)?.FullName ?? ModelOptions.DefaultModelPath,
                r.GetValue(data)?.FullName ?? Path.GetFullPath("vicuna-data"), r.GetValue(keys) ?? [])
            {
                Engine = modelOptions.EngineOptions(r),
                PipelinesPath = r.GetValue(pipelines)?.FullName,
                Input = new InputOptions { RequestsPerShard = r.GetValue(perShard) },
            };
            await using var app = ServeHost.Build(settings);
            app.Lifetime.ApplicationStarted.Register(() => Console.Error.WriteLine(
                $"serving the batch API at {app.Urls.FirstOrDefault()}/v1 (the OpenAI base URL) with the model {settings.ModelPath}; " +
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

/// <summary>What <c>serve</c> runs on. <see cref="Port"/> 0 picks a free port (tests read it from the server).</summary>
public sealed record ServeSettings(int Port, string ModelPath, string DataPath, IReadOnlyList<string> ApiKeys)
{
    public EngineOptions Engine { get; init; } = new();
    public RequestDefaults Defaults { get; init; } = new();
    /// <summary>Shards the worker holds at once; more while its engine wants work (<see cref="EnginePrefetch.LocalPump"/>).</summary>
    public int Workers { get; init; } = 4;
    public InputOptions Input { get; init; } = new();

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
        Defaults.Validate();
        new ShardPumpOptions { MaxConcurrentShards = Workers }.Validate();
        Input.Validate();
    }
}

/// <summary>Builds the serve process: Kestrel on 127.0.0.1, the Api, the worker and the finalizer loop over <c>--data</c>.</summary>
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
        Inference.Package.ModelPackage.Load(settings.ModelPath); // a bad package fails before anything listens
        RefusePortInUse(settings.Port);
        var builder = WebApplication.CreateSlimBuilder(WorkerHost.HostArguments(args ?? []));
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, settings.Port));
        // one line per job and per problem, not one per HTTP request
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        var fromVariable = (builder.Configuration[ApiKeysVariable] ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        foreach (var (source, given) in new[] { ("--api-key", settings.ApiKeys), (ApiKeysVariable, (IReadOnlyList<string>)fromVariable) })
        {
            // the key itself is a secret: its length only
            if (given.FirstOrDefault(k => !ApiOptions.IsUsableKey(k)) is { } tooShort)
            {
                throw new UsageException($"{source}: an API key must be at least {ApiOptions.MinKeyLength} non-blank characters; one given has {tooShort.Trim().Length}");
            }
        }
        var keys = settings.ApiKeys.Concat(fromVariable).Distinct().ToList();
        if (keys.Count == 0)
        {
            keys.Add("vb-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24)));
            Console.Error.WriteLine($"no API key configured (--api-key or {ApiKeysVariable}); generated one for this run: {keys[0]}");
        }

        Directory.CreateDirectory(settings.DataPath);
        var services = builder.Services;
        var time = TimeProvider.System;
        services.AddSingleton(time);
        services.AddSingleton(settings);
        services.AddSingleton(settings.Input);
        services.AddSingleton(new DataFolderLock(settings.DataPath));
        services.AddSingleton<IBlobStore>(new FolderBlobStore(new FolderBlobStoreOptions { RootPath = Path.Combine(settings.DataPath, "blobs") }));
        services.AddSingleton<ICheckpointStore>(new FolderCheckpointStore(new FolderCheckpointStoreOptions { RootPath = Path.Combine(settings.DataPath, "checkpoints") }));
        services.AddSingleton(new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = Path.Combine(settings.DataPath, "queue.db") }, time));
        services.AddSingleton<IWorkQueue>(sp => sp.GetRequiredService<SqliteWorkQueue>());
        services.AddSingleton<IJobStore>(sp => new BlobJobStore(sp.GetRequiredService<IBlobStore>()));
        services.AddSingleton(sp => new JobSubmitter(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IJobStore>(),
            sp.GetRequiredService<IWorkQueue>(), settings.Input, time));
        services.AddSingleton(sp => new JobFinalizer(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IJobStore>(),
            sp.GetRequiredService<ICheckpointStore>(), settings.Input, time));
        // loaded as the host starts, before it listens: a large model takes minutes on a CPU, so serve says it is loading
        services.AddSingleton(_ => ModelOptions.OpenShowingWait(settings.ModelPath, settings.Engine));
        services.AddSingleton<IPromptTokenCounter>(sp => new TokenizerPromptCounter(sp.GetRequiredService<LoadedModel>(), settings.Engine));
        services.AddSingleton(Channel.CreateUnbounded<string>());
        AddWebhooks(services, builder.Configuration[WebhookSecretVariable], settings.DataPath, time);
        services.AddHostedService<ServeWorker>();
        services.AddHostedService<FinalizerLoop>();
        if (settings.PipelinesPath is { } pipelinesPath)
        {
            if (!Directory.Exists(pipelinesPath)) throw new UsageException($"--pipelines folder not found: {pipelinesPath}");
            services.AddHostedService<PipelineLoop>();
        }
        services.AddVicunaBatchApi(api =>
        {
            api.ApiKeys.AddRange(keys);
            api.AllowLoopbackWebhooks = true; // the local server may call back to a receiver on this machine
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

        var app = builder.Build();
        app.Services.GetRequiredService<DataFolderLock>(); // taken now: a second server on the same folder fails here
        app.MapVicunaBatchApi();
        return app;
    }

    /// <summary>Outbox queue "webhooks" beside the shard queue, and the deliverer (loopback and http allowed locally).
    /// The signing secret: <see cref="WebhookSecretVariable"/>, else one generated once into <c>DATA/webhook_secret</c>.</summary>
    private static void AddWebhooks(IServiceCollection services, string? secret, string dataPath, TimeProvider time)
    {
        var secretFile = Path.Combine(dataPath, "webhook_secret");
        if (string.IsNullOrEmpty(secret))
        {
            if (!File.Exists(secretFile)) File.WriteAllText(secretFile, WebhookSigner.GenerateSecret());
            secret = File.ReadAllText(secretFile).Trim();
        }
        var outbox = new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = Path.Combine(dataPath, "queue.db"), QueueName = "webhooks" }, time);
        var policy = new WebhookUrlPolicy(new WebhookUrlPolicyOptions { AllowHttp = true, AllowLoopback = true });
        services.AddSingleton(new WebhookOutbox(outbox));
        services.AddSingleton(new PipelineSecrets());
        services.AddSingleton(sp => new JobSettler(sp.GetRequiredService<JobFinalizer>(), sp.GetRequiredService<TenantBatches>(),
            sp.GetRequiredService<FileCatalog>(), sp.GetRequiredService<WebhookOutbox>()));
        services.AddSingleton(sp => new WebhookDeliverer(outbox, sp.GetRequiredService<IBlobStore>(), new HttpClient(WebhookHttp.CreateHandler(policy)),
            policy, new WebhookDelivererOptions
            {
                SigningSecret = secret,
                JobSecrets = (id, ct) => sp.GetRequiredService<PipelineSecrets>().LookupAsync(id, sp.GetRequiredService<TenantBatches>().GetWebhookSecretAsync, ct),
            }, time,
            (message, e) => sp.GetRequiredService<ILogger<WebhookDeliverer>>().LogWarning(e, "webhook delivery {MessageId} failed", message.MessageId)));
        services.AddHostedService(sp => new WebhookDeliveryLoop(sp.GetRequiredService<WebhookDeliverer>(), outbox));
        services.AddSingleton(sp => new JobSweeper(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IJobStore>(), sp.GetRequiredService<JobSettler>(),
            async (events, ct) => { foreach (var e in events) await sp.GetRequiredService<Channel<string>>().Writer.WriteAsync(e.JobId, ct); }, time));
        services.AddHostedService<SweepLoop>();
    }
}

/// <summary>Runs the webhook deliverer until the server stops. At start, deliveries locked by a process that died
/// are released at once (this process owns the data folder), so a killed server's webhook goes out on restart, not a
/// lock duration later.</summary>
internal sealed class WebhookDeliveryLoop(WebhookDeliverer deliverer, SqliteWorkQueue outbox) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await outbox.ReleaseAllLocksAsync(stoppingToken);
        await deliverer.RunAsync(stoppingToken);
    }
}

/// <summary>Every minute: jobs past their completion window expire with their partial results (as the Functions timer does).</summary>
internal sealed class SweepLoop(JobSweeper sweeper, TimeProvider time, ILogger<SweepLoop> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (true)
            {
                await Task.Delay(Interval, time, stoppingToken);
                try
                {
                    foreach (var ended in (await sweeper.SweepAsync(stoppingToken)).Expired)
                        logger.LogInformation("job {JobId} expired; webhook {Webhook}", ended.Job.Id, ended.Webhook.SnakeCase());
                }
                catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "sweeping jobs failed"); }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }
}

/// <summary>Only one serve process per data folder: the worker releases the queue's stale locks at start.</summary>
internal sealed class DataFolderLock(string dataPath) : IDisposable
{
    private readonly FileStream _lock = Open(dataPath);

    public void Dispose() => _lock.Dispose();

    private static FileStream Open(string dataPath)
    {
        var path = Path.Combine(dataPath, "serve.lock");
        try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException) { throw new UsageException($"another vicuna-batch serve is using {dataPath} (lock: {path})"); }
    }
}

/// <summary>Prompt tokens as the engine counts them (Vicuna chat template or BOS + text); the context is the engine's limit.</summary>
internal sealed class TokenizerPromptCounter(LoadedModel model, EngineOptions engine) : IPromptTokenCounter
{
    private readonly TextTokenizer _tokenizer = model.Tokenizer ?? throw new UsageException($"model '{model.Name}' has no tokenizer.model");

    public int ContextLength { get; } = engine.MaxSequenceLength is > 0 and var max
        ? Math.Min(max, model.Package.Config.Model.ContextLength) : model.Package.Config.Model.ContextLength;

    public int CountPromptTokens(BatchRequest request) => request.Endpoint == BatchEndpoint.ChatCompletions
        ? VicunaChatTemplate.EncodePrompt(_tokenizer, request.Messages.Select(m => new ChatMessage(m.Role, m.Content)).ToList()).Count
        : PromptEncoder.EncodeCompletion(_tokenizer, request.Prompt ?? string.Empty).Count;
}

/// <summary>The worker: one engine fed by N shards, more while the engine wants work; each settled shard's job goes to the finalizer loop.
/// Stopping abandons the shards in flight (checkpointed requests are not redone).</summary>
internal sealed class ServeWorker(
    SqliteWorkQueue queue, IBlobStore blobs, ICheckpointStore checkpoints, LoadedModel model, ServeSettings settings,
    Channel<string> settledJobs, TimeProvider time, ILogger<ServeWorker> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await queue.ReleaseAllLocksAsync(stoppingToken); // this process owns the data folder (DataFolderLock)
        await using var host = new EngineHost(model.Engine, ownsEngine: false);
        var executor = new EngineRequestExecutor(host, model, settings.Defaults, time);
        var processor = new ShardProcessor(blobs, checkpoints, queue, executor, settings.Input, new ShardProcessorOptions(), time);
        var pump = EnginePrefetch.LocalPump(host, model.Engine.NumSlots, queue, processor, minShards: settings.Workers);
        try
        {
            await pump.RunAsync(async (result, ct) =>
            {
                if (result.Error is not null) logger.LogWarning(result.Error, "shard {ShardId} of job {JobId} failed; it will be redelivered", result.Shard?.ShardIndex, result.Shard?.JobId);
                if (result.Shard is { } shard) await settledJobs.Writer.WriteAsync(shard.JobId, ct);
            }, _ => Task.FromResult(false), stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }
}

/// <summary>
/// Finalizes jobs as their shards settle (and, at start, every job left unfinished by an earlier run);
/// completes cancellations once a cancelling job's shards have settled.
/// </summary>
internal sealed class FinalizerLoop(Channel<string> settledJobs, JobSettler settler, IBlobStore blobs, IJobStore jobs, ILogger<FinalizerLoop> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await EnqueueUnfinishedAsync(stoppingToken);
            await foreach (var jobId in settledJobs.Reader.ReadAllAsync(stoppingToken))
            {
                try
                {
                    if (await settler.SettleAsync(jobId, stoppingToken) is { } ended)
                        logger.LogInformation("job {JobId} ended: {Status}; webhook {Webhook}", jobId, ended.Job.Status.SnakeCase(), ended.Webhook.SnakeCase());
                }
                catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "finalizing job {JobId} failed", jobId); }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    private async Task EnqueueUnfinishedAsync(CancellationToken cancellationToken)
    {
        await foreach (var name in blobs.ListAsync("jobs/", cancellationToken))
        {
            if (!name.EndsWith("/job.json", StringComparison.Ordinal)) continue;
            var jobId = name["jobs/".Length..^"/job.json".Length];
            if (await jobs.GetAsync(jobId, cancellationToken) is { Job.Status: JobStatus.InProgress or JobStatus.Finalizing or JobStatus.Cancelling })
                await settledJobs.Writer.WriteAsync(jobId, cancellationToken);
        }
    }
}

using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using VicunaBatch.Azure;
using VicunaBatch.Azure.Tests;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Functions.Tests;

/// <summary>
/// The Function App's services exactly as <see cref="FunctionsExtensions.AddVicunaBatchFunctions"/> wires them, over
/// containers and queues of their own on the shared Azurite, with one substitution: the shard work queue is a Storage
/// queue (Service Bus has no emulator here). The host's part is played by hand: receive a queue message as a trigger
/// would, call the function, delete the message when it returned.
/// </summary>
internal sealed class FunctionsRig : IAsyncDisposable
{
    public static readonly DateTimeOffset Start = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);
    public const string KeyA = "key-functions-tenant-a";
    public const string KeyB = "key-functions-tenant-b";

    /// <summary>The deployment's models (<c>Models__Served</c>), the default first.</summary>
    public const string Model = "tiny", OtherModel = "tiny-2";

    private readonly AzuriteFixture _azurite;

    public FunctionsRig(AzuriteFixture azurite, IDictionary<string, string?>? settings = null)
    {
        _azurite = azurite;
        Containers = azurite.UniqueContainers();
        (ShardDoneName, WebhooksName, InboxEventsName) = (azurite.UniqueName("shard-done"), azurite.UniqueName("webhooks"), azurite.UniqueName("inbox-events"));
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(Settings(settings)).Build();
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.AddProvider(Logs));
        services.AddSingleton<TimeProvider>(Time);
        services.AddVicunaBatchFunctions(configuration);
        Shards = new StorageWorkQueue(azurite.Queues(), azurite.UniqueName("shards"), TimeSpan.FromMinutes(5), TimeProvider.System);
        Shards.CreateIfNotExistsAsync().GetAwaiter().GetResult();
        services.AddSingleton<IWorkQueues>(new SharedWorkQueue(Shards)); // every model's shards: the Service Bus stand-in is a Storage queue
        Services = services.BuildServiceProvider();
        RawQueue(InboxEventsName).CreateIfNotExists(); // on Azure the infra creates it; the app only reads it
    }

    public ManualTimeProvider Time { get; } = new(Start);
    public LogCapture Logs { get; } = new();
    public StorageContainerNames Containers { get; }
    public string ShardDoneName { get; }
    public string WebhooksName { get; }
    public string InboxEventsName { get; }
    public StorageWorkQueue Shards { get; }
    public ServiceProvider Services { get; }
    public IBlobStore Blobs => Services.GetRequiredService<IBlobStore>();
    public IJobStore Jobs => Services.GetRequiredService<IJobStore>();
    public ControlPlaneQueues Queues => Services.GetRequiredService<ControlPlaneQueues>();
    public EchoExecutor Executor { get; } = new(Start);

    public T Function<T>() => ActivatorUtilities.CreateInstance<T>(Services);

    private Dictionary<string, string?> Settings(IDictionary<string, string?>? extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Storage:ConnectionString"] = _azurite.ConnectionString,
            ["Storage:CreateIfMissing"] = "true",
            ["Storage:Containers:Inputs"] = Containers.Inputs, ["Storage:Containers:Results"] = Containers.Results,
            ["Storage:Containers:Jobs"] = Containers.Jobs, ["Storage:Containers:Inbox"] = Containers.Inbox,
            ["Storage:Containers:Pipelines"] = Containers.Pipelines,
            ["Storage:Queues:ShardDone"] = ShardDoneName, ["Storage:Queues:WebhookDeliveries"] = WebhooksName,
            ["Storage:Queues:InboxEvents"] = InboxEventsName,
            ["Api:Keys"] = $"{KeyA}, {KeyB}",
            ["Models:Served"] = $"{Model}, {OtherModel}",
            ["Api:TenantKey"] = "functions-test-tenant-key-0123456789abcdef",
            ["Webhooks:SigningSecret"] = "whsec_" + Convert.ToBase64String(Encoding.UTF8.GetBytes("functions-test-signing-secret-32b")),
            ["Webhooks:AllowLoopback"] = "true",
            ["Input:RequestsPerShard"] = "2",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>()) settings[key] = value;
        return settings;
    }

    /// <summary>Writes an input file and submits it as a job (what the Api does on create).</summary>
    public async Task<BatchJob> SubmitAsync(string jobId, string input, WebhookSettings? webhook = null, TimeSpan? window = null)
    {
        await Blobs.PutBytesAsync($"files/{jobId}/content.jsonl", Encoding.UTF8.GetBytes(input), BlobCondition.None);
        return await Services.GetRequiredService<JobSubmitter>().SubmitAsync(new JobSubmission($"files/{jobId}/content.jsonl")
        {
            JobId = jobId, Webhook = webhook, CompletionWindow = window ?? TimeSpan.FromHours(24),
        });
    }

    /// <summary>The GPU worker's part: runs shards (at most <paramref name="maxShards"/>), announcing each settled one on shard-done.</summary>
    public async Task<int> RunShardsAsync(int maxShards = int.MaxValue, bool announce = true)
    {
        var processor = new ShardProcessor(Blobs, Services.GetRequiredService<ICheckpointStore>(), Shards, Services.GetRequiredService<IJobStore>(), Executor,
            Services.GetRequiredService<InputOptions>(), new ShardProcessorOptions { LockRenewalInterval = TimeSpan.Zero }, Time);
        int numRun = 0;
        while (numRun < maxShards && await Shards.ReceiveAsync(1) is [var message])
        {
            var result = await processor.ProcessAsync(message);
            numRun++;
            if (announce && result.Shard is { } shard) await Queues.ShardDone.SendAsync([new ShardDoneEvent(shard.JobId, shard.ShardIndex).ToMessage()]);
        }
        return numRun;
    }

    public QueueClient RawQueue(string name) => _azurite.Queues().GetQueueClient(name);

    /// <summary>The host's queue trigger: receives visible messages, calls the function with each, deletes it when the
    /// function returned (ignoring a message the function already settled itself, as the host does).</summary>
    public async Task<int> TriggerAsync(string queueName, Func<QueueMessage, Task> function)
    {
        var queue = RawQueue(queueName);
        int numRun = 0;
        QueueMessage[] messages;
        while ((messages = (await queue.ReceiveMessagesAsync(32, TimeSpan.FromSeconds(30))).Value).Length > 0)
            foreach (var message in messages)
            {
                await function(message);
                numRun++;
                try { await queue.DeleteMessageAsync(message.MessageId, message.PopReceipt); }
                catch (RequestFailedException e) when (e.Status is 400 or 404) { }
            }
        return numRun;
    }

    public Task<int> RunFinalizerAsync() => TriggerAsync(ShardDoneName, m => Function<FinalizerFunction>().RunAsync(m, default));

    /// <summary>The inbox trigger over every queued event; the jobs it returned (null for a dropped event), in order.</summary>
    public async Task<List<BatchJob?>> RunInboxAsync()
    {
        var jobs = new List<BatchJob?>();
        await TriggerAsync(InboxEventsName, async m => jobs.Add(await Function<InboxFunction>().RunAsync(m, default)));
        return jobs;
    }

    public Task<int> RunDelivererAsync() => TriggerAsync(WebhooksName, m => Function<DelivererFunction>().RunAsync(m, default));

    /// <summary>An HTTP request as the Functions ASP.NET Core integration hands it to a trigger, and the response the IResult writes.</summary>
    public async Task<(int Status, JsonElement Body)> HttpAsync(
        Func<ApiFunctions, HttpRequest, Task<IResult>> function, string method, string path, string? key, HttpContent? content = null)
    {
        var context = new DefaultHttpContext { RequestServices = Services };
        context.Request.Method = method;
        int queryAt = path.IndexOf('?');
        context.Request.Path = queryAt < 0 ? path : path[..queryAt];
        if (queryAt >= 0) context.Request.QueryString = new QueryString(path[queryAt..]);
        if (key is not null) context.Request.Headers.Authorization = $"Bearer {key}";
        if (content is not null)
        {
            context.Request.ContentType = content.Headers.ContentType!.ToString();
            // forward-only, as Kestrel's request body is (a multipart section over a seekable body reports a wrong Length)
            context.Request.Body = new ForwardOnlyStream(new MemoryStream(await content.ReadAsByteArrayAsync()));
        }
        var response = new MemoryStream();
        context.Response.Body = response;
        var result = await function(Function<ApiFunctions>(), context.Request);
        await result.ExecuteAsync(context);
        var text = Encoding.UTF8.GetString(response.ToArray());
        return (context.Response.StatusCode, context.Response.ContentType?.StartsWith("application/json", StringComparison.Ordinal) == true ? JsonDocument.Parse(text).RootElement.Clone() : JsonSerializer.SerializeToElement(text));
    }

    public async Task<string[]> ReadLinesAsync(string blob) =>
        Encoding.UTF8.GetString(await Blobs.ReadBytesAsync(blob)).Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public ValueTask DisposeAsync() => Services.DisposeAsync();
}

/// <summary>What the app logged at warning and above: level, message and exception of each entry.</summary>
internal sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)> _entries = new();

    public IReadOnlyList<(LogLevel Level, string Message, Exception? Exception)> Entries => [.. _entries];

    public ILogger CreateLogger(string categoryName) => new Logger(_entries);

    public void Dispose() { }

    private sealed class Logger(ConcurrentQueue<(LogLevel, string, Exception?)> entries) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) entries.Enqueue((logLevel, formatter(state, exception), exception));
        }
    }
}

/// <summary>A read-only, non-seekable view of a stream: what a request body from the network looks like.</summary>
internal sealed class ForwardOnlyStream(Stream inner) : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

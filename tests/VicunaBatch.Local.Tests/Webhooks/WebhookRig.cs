using System.Net;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Local.Tests.Webhooks;

/// <summary>Names from a fixed table; tests never touch DNS.</summary>
internal sealed class TableResolver(Dictionary<string, IPAddress[]> table) : IHostResolver
{
    public Task<IReadOnlyList<IPAddress>> ResolveAsync(string host, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<IPAddress>>(table.TryGetValue(host, out var a) ? a : []);
}

/// <summary>Outbox (SQLite queue "webhooks"), folder blob store, a deliverer on the real clock with a
/// millisecond retry schedule, and an HttpClient on <see cref="WebhookHttp.CreateHandler"/>.</summary>
internal sealed class WebhookRig : IDisposable
{
    public static readonly TimeSpan[] TestDelays = [TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(600)];

    private readonly TempFolder _folder = new();
    private readonly HttpClient _http;

    public string Secret { get; } = WebhookSigner.GenerateSecret();
    public SqliteWorkQueue Outbox { get; }
    public FolderBlobStore Blobs { get; }
    public WebhookOutbox Enqueuer { get; }
    public WebhookDeliverer Deliverer { get; }
    public WebhookDeliveryLog Log { get; }
    public List<Exception> Errors { get; } = [];

    public WebhookRig(bool allowLoopback = true, TimeSpan? timeout = null, IHostResolver? resolver = null)
    {
        Outbox = new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = _folder.Combine("queue.db"), QueueName = "webhooks" }, TimeProvider.System);
        Blobs = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _folder.Combine("blobs"), FlushToDisk = false });
        var policy = new WebhookUrlPolicy(new WebhookUrlPolicyOptions { AllowHttp = true, AllowLoopback = allowLoopback }, resolver);
        _http = new HttpClient(WebhookHttp.CreateHandler(policy));
        Deliverer = new WebhookDeliverer(Outbox, Blobs, _http, policy, new WebhookDelivererOptions
        {
            SigningSecret = Secret, RetryDelays = TestDelays, PollInterval = TimeSpan.FromMilliseconds(20),
            Timeout = timeout ?? TimeSpan.FromSeconds(2),
        }, TimeProvider.System, onError: (_, e) => { lock (Errors) Errors.Add(e); });
        Enqueuer = new WebhookOutbox(Outbox);
        Log = new WebhookDeliveryLog(Blobs);
    }

    public static BatchJob CompletedJob(string url, string id = "batch_hook1") => new()
    {
        Id = id, Endpoint = "/v1/chat/completions", InputFileId = "inputs/in.jsonl", CreatedAt = 1_700_000_000,
        Status = JobStatus.Completed, CompletedAt = 1_700_000_050, OutputFileId = $"jobs/{id}/output.jsonl",
        RequestCounts = new RequestCounts(2, 2, 0), Webhook = new WebhookSettings(url, ["batch.completed"]),
    };

    /// <summary>Runs the deliverer loop until the outbox is empty (then <paramref name="settle"/> longer, to
    /// catch stray extra sends), bounded by <paramref name="limit"/>.</summary>
    public async Task RunUntilOutboxEmptyAsync(TimeSpan limit, TimeSpan? settle = null)
    {
        using var stop = new CancellationTokenSource(limit);
        var loop = Deliverer.RunAsync(stop.Token);
        while (!stop.IsCancellationRequested && await Outbox.CountAsync() > 0) await Task.Delay(20);
        Assert.False(stop.IsCancellationRequested, $"outbox not empty after {limit}");
        await Task.Delay(settle ?? TimeSpan.FromMilliseconds(200));
        stop.Cancel();
        await loop.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Empty(Errors);
    }

    public void Dispose()
    {
        _http.Dispose();
        _folder.Dispose();
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using VicunaBatch.Testing;

namespace VicunaBatch.Local.Tests.Webhooks;

/// <summary>A request the receiver got: when (since it started), the Standard Webhooks headers, the raw body.</summary>
internal sealed record ReceivedRequest(TimeSpan At, string Method, string? ContentType, string? Id, string? Timestamp, string? Signature, byte[] Body);

/// <summary>
/// A real HTTP server on 127.0.0.1 (HttpListener on a free port). Answers each request with the next
/// status of <see cref="Answers"/> (200 when empty) and records it. Stops on dispose.
/// </summary>
internal sealed class LoopbackReceiver : IAsyncDisposable
{
    private readonly HttpListener _listener;
    private readonly Task _loop;
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public ConcurrentQueue<int> Answers { get; } = new();
    public ConcurrentQueue<ReceivedRequest> Requests { get; } = new();
    public string Url { get; }
    public int Port { get; }

    /// <summary>How long to wait before answering the first requests, one entry each (none: at once).</summary>
    public ConcurrentQueue<TimeSpan> Delays { get; } = new();

    public LoopbackReceiver(params int[] answers) : this(null, answers) { }

    /// <summary>A receiver on <paramref name="port"/>: one that comes up where one was down.</summary>
    public static LoopbackReceiver OnPort(int port, params int[] answers) => new(port, answers);

    private LoopbackReceiver(int? port, int[] answers)
    {
        foreach (var status in answers) Answers.Enqueue(status);
        for (int tries = 1; ; tries++)
        {
            Port = port ?? LoopbackPorts.Free();
            _listener = new HttpListener();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            try { _listener.Start(); break; }
            catch (HttpListenerException) when (tries < 5 && port is null) { _listener.Close(); }
        }
        Url = $"http://127.0.0.1:{Port}/hooks/batch";
        _loop = Task.Run(ServeAsync);
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            if (Delays.TryDequeue(out var delay)) await Task.Delay(delay);
            var headers = context.Request.Headers;
            Requests.Enqueue(new ReceivedRequest(_clock.Elapsed, context.Request.HttpMethod, context.Request.ContentType,
                headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"], body.ToArray()));
            context.Response.StatusCode = Answers.TryDequeue(out var status) ? status : 200;
            context.Response.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Close alone: after Stop, the managed HttpListener's Close binds the port again to remove its prefix, and
        // throws "Address already in use" when another process took the port meanwhile
        _listener.Close();
        await _loop.WaitAsync(TimeSpan.FromSeconds(5));
    }
}

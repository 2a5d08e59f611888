using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Functions.Tests;

/// <summary>A webhook endpoint on 127.0.0.1 that answers each POST with the next planned status (then 200) and records it.</summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<int> _plannedStatuses;

    private WebhookReceiver(WebApplication app, IEnumerable<int> plannedStatuses) => (_app, _plannedStatuses) = (app, new(plannedStatuses));

    public ConcurrentQueue<(int Status, WebhookHeaders Headers, string Body)> Received { get; } = new();

    public string Url => _app.Urls.Single() + "/hook";

    public static async Task<WebhookReceiver> StartAsync(params int[] plannedStatuses)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        var receiver = new WebhookReceiver(builder.Build(), plannedStatuses);
        receiver._app.MapPost("/hook", async (HttpContext context) =>
        {
            var h = context.Request.Headers;
            int status = receiver._plannedStatuses.TryDequeue(out var planned) ? planned : 200;
            receiver.Received.Enqueue((status, new WebhookHeaders(h[WebhookSigner.IdHeader]!, h[WebhookSigner.TimestampHeader]!, h[WebhookSigner.SignatureHeader]!),
                await new StreamReader(context.Request.Body).ReadToEndAsync()));
            return Results.StatusCode(status);
        });
        await receiver._app.StartAsync();
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using VicunaBatch.Core;

namespace VicunaBatch.Api.Tests;

[Collection(ServerCollection.Name)]
public sealed class WebhookTests(ServerFixture server)
{
    [Fact]
    public async Task CompletedBatch_withLoopbackWebhook_receivesSignedCompletedEvent()
    {
        var received = new ConcurrentQueue<(WebhookHeaders Headers, string Body)>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        await using var receiver = builder.Build();
        receiver.MapPost("/hook", async (HttpContext context) =>
        {
            var h = context.Request.Headers;
            received.Enqueue((new WebhookHeaders(h[WebhookSigner.IdHeader]!, h[WebhookSigner.TimestampHeader]!, h[WebhookSigner.SignatureHeader]!),
                await new StreamReader(context.Request.Body).ReadToEndAsync()));
            return Results.Ok();
        });
        await receiver.StartAsync();
        var url = receiver.Urls.Single() + "/hook";

        using var client = server.Client(ServerFixture.Keys[0]);
        var fileId = (await Api.UploadAsync(client, Api.ChatLines("hook-1", "hook-2"))).GetProperty("id").GetString()!;
        var batchId = (await Api.ReadAsync(await client.PostAsync("v1/batches", Api.Json(new
        {
            input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "24h", webhook = new { url },
        })), 200)).GetProperty("id").GetString()!;
        await Api.PollAsync(client, batchId, "completed");

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (received.IsEmpty && DateTime.UtcNow < deadline) await Task.Delay(100);
        var (headers, body) = Assert.Single(received);
        var evt = JsonDocument.Parse(body).RootElement;
        Assert.Equal("batch.completed", evt.GetProperty("type").GetString());
        Assert.Equal(batchId, evt.GetProperty("data").GetProperty("id").GetString());
        var serverSecret = (await File.ReadAllTextAsync(Path.Combine(server.DataPath, "webhook_secret"))).Trim();
        Assert.Equal(WebhookVerifyResult.Valid, WebhookSigner.Verify(serverSecret, headers, body, DateTimeOffset.UtcNow));
    }
}

using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Api.Tests;

[Collection(ServerCollection.Name)]
public sealed class WebhookTests(ServerFixture server)
{
    [Fact]
    public async Task CompletedBatch_withLoopbackWebhook_receivesOneEventSignedWithTheBatchSecret()
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
        var created = await Api.ReadAsync(await client.PostAsync("v1/batches", Api.Json(new
        {
            input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "24h", webhook = new { url },
        })), 200);
        var batchId = created.GetProperty("id").GetString()!;
        var batchSecret = created.GetProperty("webhook").GetProperty("secret").GetString()!;
        await Api.PollAsync(client, batchId, "completed");

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (received.IsEmpty && DateTime.UtcNow < deadline) await Task.Delay(100);
        var (headers, body) = Assert.Single(received);
        var evt = JsonDocument.Parse(body).RootElement;
        Assert.Equal("batch.completed", evt.GetProperty("type").GetString());
        Assert.Equal(batchId, evt.GetProperty("data").GetProperty("id").GetString());
        Assert.Equal(WebhookVerifyResult.Valid, WebhookSigner.Verify(batchSecret, headers, body, DateTimeOffset.UtcNow));
        var serverSecret = (await File.ReadAllTextAsync(Path.Combine(server.DataPath, "webhook_secret"))).Trim();
        Assert.Equal(WebhookVerifyResult.SignatureMismatch, WebhookSigner.Verify(serverSecret, headers, body, DateTimeOffset.UtcNow));
        // and as a user's receiver checks it, with the Standard Webhooks library
        var delivery = new VicunaBatch.Testing.ReceivedWebhook(headers.Id, headers.Timestamp, headers.Signature, body);
        Assert.Equal([null], await VicunaBatch.Testing.StandardWebhooksLibrary.VerifyAsync(batchSecret, [delivery]));
        Assert.NotNull(Assert.Single(await VicunaBatch.Testing.StandardWebhooksLibrary.VerifyAsync(serverSecret, [delivery])));

        // the event names the output as a file the owner can download
        var outputFileId = evt.GetProperty("data").GetProperty("output_file_id").GetString()!;
        Assert.StartsWith("file-", outputFileId);
        var output = await client.GetStringAsync($"v1/files/{outputFileId}/content");
        Assert.Contains("\"custom_id\":\"hook-1\"", output);
        Assert.Contains("\"custom_id\":\"hook-2\"", output);

        // exactly one terminal event, even after the finalizer and deliverer had time to repeat themselves
        await Task.Delay(1500);
        Assert.Single(received);
    }

    [Theory]
    [InlineData("http://169.254.169.254/latest/meta-data")]
    [InlineData("https://10.1.2.3/hook")]
    [InlineData("https://192.168.0.10/hook")]
    [InlineData("ftp://example.com/hook")]
    [InlineData("https://[64:ff9b::a9fe:a9fe]/hook")]                       // NAT64 of 169.254.169.254
    [InlineData("https://[2002:a9fe:a9fe::]/hook")]                         // 6to4
    [InlineData("https://[::a9fe:a9fe]/hook")]                              // IPv4-compatible
    [InlineData("https://[::ffff:0:a9fe:a9fe]/hook")]                       // SIIT
    [InlineData("https://[2001:0:4136:e378:8000:63bf:5601:5601]/hook")]     // Teredo, client 169.254.169.254
    [InlineData("https://198.18.0.1/hook")]                                 // benchmarking
    [InlineData("https://192.0.0.1/hook")]                                  // IETF protocol assignments
    [InlineData("https://192.0.2.1/hook")]                                  // documentation
    [InlineData("https://[2001:db8::1]/hook")]                              // documentation
    public async Task Create_webhookAimedAtPrivateOrMetadataAddress_is400(string url)
    {
        using var client = server.Client(ServerFixture.Keys[0]);
        var fileId = (await Api.UploadAsync(client, Api.ChatLines("ssrf-1"))).GetProperty("id").GetString()!;
        var response = await client.PostAsync("v1/batches", Api.Json(new
        {
            input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "24h", webhook = new { url },
        }));
        var error = (await Api.ReadAsync(response, 400)).GetProperty("error");
        Assert.Equal("webhook.url", error.GetProperty("param").GetString());
        Assert.Contains("webhook.url is not allowed", error.GetProperty("message").GetString());
    }
}

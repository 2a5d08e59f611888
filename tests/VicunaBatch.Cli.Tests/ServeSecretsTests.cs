using System.Net;
using VicunaBatch.Local.Tests.Webhooks;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// Secrets never reach the logs: <c>vicuna-batch serve</c> as a process, logging at Trace, takes an upload, a batch with
/// its own webhook secret, a wrong key and a missing one, runs the batch and delivers its signed webhook to a receiver
/// on 127.0.0.1; then every line it wrote is searched for the API key, the wrong key and both signing secrets.
/// </summary>
public sealed class ServeSecretsTests : IDisposable
{
    private const string ApiKey = "vb-test-key-5f1c9a77d2e04b";
    private const string WrongKey = "vb-wrong-key-0b3d8e61aa";
    private const string ServerSecret = "whsec_c2VydmVyLXNpZ25pbmctc2VjcmV0LWZvci10ZXN0cw==";
    private const string BatchSecret = "whsec_YmF0Y2gtb3duLXNlY3JldC1mb3ItdGhlLXRlc3Q=";
    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Serve_logs_at_trace_without_any_key_or_webhook_secret()
    {
        await using var receiver = new LoopbackReceiver();
        using var serve = await ServeProcess.StartAsync(_folder.Root, Path.Combine(_folder.Root, "data"), ApiKey,
            new Dictionary<string, string> { ["VICUNABATCH_WEBHOOK_SECRET"] = ServerSecret, ["Logging__LogLevel__Default"] = "Trace" });

        Assert.Equal(HttpStatusCode.Unauthorized, (await serve.SendAsync(HttpMethod.Get, "/v1/batches", key: "")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await serve.SendAsync(HttpMethod.Get, "/v1/batches", key: WrongKey)).StatusCode);
        var fileId = await serve.UploadAsync(["{\"custom_id\":\"a\",\"prompt\":\"hi\",\"max_tokens\":2}"]);
        var batch = await serve.CreateBatchAsync(new
        {
            input_file_id = fileId, endpoint = "/v1/completions", completion_window = "24h",
            webhook = new { url = receiver.Url, secret = BatchSecret },
        });

        var status = await serve.WaitForBatchEndAsync(batch.GetProperty("id").GetString()!, TimeSpan.FromSeconds(60));
        for (var i = 0; i < 600 && receiver.Requests.IsEmpty; i++) await Task.Delay(100);
        serve.Process.Kill();

        Assert.StartsWith("v1,", Assert.Single(receiver.Requests).Signature);
        Assert.Equal("completed", status.GetProperty("status").GetString());
        var logs = serve.Logs;
        Assert.Contains("job ", logs); // it did log the job's life
        foreach (var secret in new[] { ApiKey, WrongKey, ServerSecret, BatchSecret, ServerSecret["whsec_".Length..], BatchSecret["whsec_".Length..] })
            Assert.DoesNotContain(secret, logs);
    }
}

using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// Secrets never reach the logs: <c>vicuna-batch serve</c> as a process, logging at Trace, takes an upload, a batch with
/// its own webhook secret, a wrong key and a missing one, runs the batch and delivers its signed webhook to a receiver
/// on 127.0.0.1; then every line it wrote is searched for the API key, the wrong key and both signing secrets.
/// </summary>
public sealed partial class ServeSecretsTests : IDisposable
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
        using var receiver = new HttpListener();
        var receiverPort = FreePort();
        receiver.Prefixes.Add($"http://127.0.0.1:{receiverPort}/");
        receiver.Start();
        using var serve = CliProcess.Start(_folder.Root,
            new Dictionary<string, string> { ["VICUNABATCH_WEBHOOK_SECRET"] = ServerSecret, ["Logging__LogLevel__Default"] = "Trace" },
            "serve", "--port", "0", "--data", Path.Combine(_folder.Root, "data"), "--api-key", ApiKey);
        using var http = new HttpClient { BaseAddress = await ListeningOnAsync(serve), Timeout = TimeSpan.FromSeconds(30) };

        Assert.Equal(HttpStatusCode.Unauthorized, (await Send(http, HttpMethod.Get, "/v1/batches", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Send(http, HttpMethod.Get, "/v1/batches", WrongKey)).StatusCode);
        using var upload = new MultipartFormDataContent
        {
            { new StringContent("batch"), "purpose" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes("{\"custom_id\":\"a\",\"prompt\":\"hi\",\"max_tokens\":2}\n")), "file", "in.jsonl" },
        };
        var file = await JsonAsync(await Send(http, HttpMethod.Post, "/v1/files", ApiKey, upload));
        var create = JsonSerializer.Serialize(new
        {
            input_file_id = file.GetProperty("id").GetString(), endpoint = "/v1/completions", completion_window = "24h",
            webhook = new { url = $"http://127.0.0.1:{receiverPort}/hook", secret = BatchSecret },
        });
        var batch = await JsonAsync(await Send(http, HttpMethod.Post, "/v1/batches", ApiKey, new StringContent(create, Encoding.UTF8, "application/json")));

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var delivery = await receiver.GetContextAsync().WaitAsync(timeout.Token);
        var signature = delivery.Request.Headers["webhook-signature"];
        delivery.Response.StatusCode = 200;
        delivery.Response.Close();
        var status = await JsonAsync(await Send(http, HttpMethod.Get, $"/v1/batches/{batch.GetProperty("id").GetString()}", ApiKey));
        serve.Kill();

        Assert.StartsWith("v1,", signature);
        Assert.Equal("completed", status.GetProperty("status").GetString());
        var logs = serve.Stdout + serve.Stderr;
        Assert.Contains("job ", logs); // it did log the job's life
        foreach (var secret in new[] { ApiKey, WrongKey, ServerSecret, BatchSecret, ServerSecret["whsec_".Length..], BatchSecret["whsec_".Length..] })
            Assert.DoesNotContain(secret, logs);
    }

    private static Task<HttpResponseMessage> Send(HttpClient http, HttpMethod method, string path, string? key, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = content };
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http.SendAsync(request);
    }

    private static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static async Task<Uri> ListeningOnAsync(CliProcess serve)
    {
        for (var i = 0; i < 300; i++)
        {
            if (ListeningOn().Match(serve.Stdout + serve.Stderr) is { Success: true } match) return new Uri(match.Groups[1].Value);
            Assert.False(serve.HasExited, $"serve exited:\n{serve.Stderr}");
            await Task.Delay(100);
        }
        throw new TimeoutException($"serve did not say where it listens:\n{serve.Stdout}{serve.Stderr}");
    }

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();

    private static int FreePort()
    {
        using var socket = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}

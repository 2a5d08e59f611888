using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace VicunaBatch.Cli.Tests;

/// <summary><c>vicuna-batch serve</c> as a child process on a free loopback port, and an HTTP client for its API.</summary>
internal sealed partial class ServeProcess : IDisposable
{
    private ServeProcess(CliProcess process, HttpClient http, string apiKey) => (Process, Http, ApiKey) = (process, http, apiKey);

    public CliProcess Process { get; }

    public HttpClient Http { get; }

    public string ApiKey { get; }

    public string Logs => Process.Stdout + Process.Stderr;

    /// <summary>Starts serve on <paramref name="dataPath"/> with one API key and waits until it says where it listens.</summary>
    public static Task<ServeProcess> StartAsync(string workingDirectory, string dataPath, string apiKey,
        IReadOnlyDictionary<string, string>? environment = null, params string[] extraArgs) =>
        StartWithArgsAsync(workingDirectory, apiKey, environment, ["--port", "0", "--data", dataPath, "--api-key", apiKey, .. extraArgs]);

    /// <summary>Starts <c>serve ARGS</c> (the keys given in them as the test chooses); the client sends <paramref name="apiKey"/>.</summary>
    public static async Task<ServeProcess> StartWithArgsAsync(string workingDirectory, string apiKey,
        IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var process = CliProcess.Start(workingDirectory, environment ?? new Dictionary<string, string>(), ["serve", .. args]);
        try
        {
            var http = new HttpClient { BaseAddress = await ListeningOnAsync(process), Timeout = TimeSpan.FromSeconds(30) };
            return new ServeProcess(process, http, apiKey);
        }
        catch
        {
            process.Dispose();
            throw;
        }
    }

    public Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, HttpContent? content = null, string? key = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = content };
        if ((key ?? ApiKey) is { Length: > 0 } bearer) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return Http.SendAsync(request);
    }

    /// <summary>POST /v1/files with <paramref name="lines"/> as a batch input; returns the file id.</summary>
    public async Task<string> UploadAsync(IEnumerable<string> lines, string name = "in.jsonl")
    {
        using var upload = new MultipartFormDataContent
        {
            { new StringContent("batch"), "purpose" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n")), "file", name },
        };
        return (await JsonAsync(await SendAsync(HttpMethod.Post, "/v1/files", upload))).GetProperty("id").GetString()!;
    }

    /// <summary>POST /v1/batches with <paramref name="body"/> serialized as JSON.</summary>
    public async Task<JsonElement> CreateBatchAsync(object body) =>
        await JsonAsync(await SendAsync(HttpMethod.Post, "/v1/batches", new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json")));

    public async Task<JsonElement> GetBatchAsync(string batchId) => await JsonAsync(await SendAsync(HttpMethod.Get, $"/v1/batches/{batchId}"));

    /// <summary>Polls the batch until it reaches a terminal status (bounded by <paramref name="timeout"/>).</summary>
    public async Task<JsonElement> WaitForBatchEndAsync(string batchId, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            var batch = await GetBatchAsync(batchId);
            if (batch.GetProperty("status").GetString() is "completed" or "failed" or "expired" or "cancelled") return batch;
            Assert.False(Process.HasExited, $"serve exited while batch {batchId} was {batch.GetProperty("status")}:\n{Logs}");
            try { await Task.Delay(100, cts.Token); }
            catch (OperationCanceledException) { throw new TimeoutException($"batch {batchId} still {batch.GetProperty("status")} after {timeout}:\n{Logs}"); }
        }
    }

    /// <summary>GET /v1/files/{id}/content as bytes (empty for a null id).</summary>
    public async Task<byte[]> FileContentAsync(string? fileId)
    {
        if (fileId is null) return [];
        var response = await SendAsync(HttpMethod.Get, $"/v1/files/{fileId}/content");
        Assert.True(response.IsSuccessStatusCode, $"GET /v1/files/{fileId}/content: {(int)response.StatusCode}");
        return await response.Content.ReadAsByteArrayAsync();
    }

    public static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public void Dispose()
    {
        Http.Dispose();
        Process.Dispose();
    }

    private static async Task<Uri> ListeningOnAsync(CliProcess serve)
    {
        for (var i = 0; i < 600; i++)
        {
            if (ListeningOn().Match(serve.Stdout + serve.Stderr) is { Success: true } match) return new Uri(match.Groups[1].Value);
            Assert.False(serve.HasExited, $"serve exited:\n{serve.Stderr}");
            await Task.Delay(100);
        }
        throw new TimeoutException($"serve did not say where it listens in 60 s:\n{serve.Stdout}{serve.Stderr}");
    }

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();
}

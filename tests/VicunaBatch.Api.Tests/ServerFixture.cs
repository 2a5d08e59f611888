using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using VicunaBatch.Cli;
using VicunaBatch.Testing;

namespace VicunaBatch.Api.Tests;

/// <summary>
/// The real serve host (the one <c>vicuna-batch serve</c> builds) on 127.0.0.1 with a free port, the embedded
/// tiny model and a temp data folder; shared by every test in <see cref="ServerCollection"/>. What it logs at
/// warning and above is in <see cref="Logs"/>.
/// </summary>
public class ServerFixture : IAsyncLifetime
{
    /// <summary>Keys the server accepts; tests that need an empty tenant use a key no other test uses.</summary>
    public static readonly string[] Keys = ["key-tenant-a-0001", "key-tenant-b-0002", "key-tenant-c-0003", "key-tenant-d-0004", "key-tenant-e-0005", "key-tenant-f-0006", "key-tenant-g-0007", "key-tenant-h-0008", "key-tenant-i-0009", "key-tenant-j-0010", "key-tenant-k-0011", "key-tenant-l-0012"];

    /// <summary>Tenants of the load test alone, so its batches never show up in other tests' listings.</summary>
    public static readonly string[] LoadKeys = ["key-load-tenant-01", "key-load-tenant-02", "key-load-tenant-03", "key-load-tenant-04"];

    /// <summary>
    /// The models served: the embedded tiny model by its package's name (the default), and the same package again as
    /// <see cref="SecondModel"/>, an engine of its own.
    /// </summary>
    public static readonly IReadOnlyList<ModelChoice> Models =
        [ModelChoice.Of(Path.Combine(Checkout.Root, "models", "tiny")), new(SecondModel, Path.Combine(Checkout.Root, "models", "tiny"))];

    public const string SecondModel = "tiny-second";

    private WebApplication? _app;

    public string DataPath { get; } = Path.Combine(Path.GetTempPath(), $"vicuna-api-tests-{Guid.NewGuid():N}");

    public Uri BaseAddress { get; private set; } = null!;

    public LogCapture Logs { get; } = new();

    /// <summary>The settings serve starts with; a fixture of its own may change them.</summary>
    protected virtual ServeSettings Configure(ServeSettings settings) => settings;

    public async Task InitializeAsync()
    {
        var settings = Configure(new ServeSettings(0, Models, DataPath, [.. Keys, .. LoadKeys])
        {
            Defaults = new Execution.RequestDefaults { MaxTokens = 8 },
        });
        _app = ServeHost.Build(settings, ["--Logging:LogLevel:Default=Warning"]);
        _app.Services.GetRequiredService<ILoggerFactory>().AddProvider(Logs);
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        BaseAddress = new Uri(address.Replace("[::1]", "127.0.0.1"));
        Assert.Equal("127.0.0.1", BaseAddress.Host);
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        try { Directory.Delete(DataPath, recursive: true); } catch (IOException) { }
    }

    public HttpClient Client(string? key)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (key is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }
}

[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>
{
    public const string Name = "server";
}

/// <summary>The calls an OpenAI client makes, over real HTTP.</summary>
internal static class Api
{
    public static string ChatLines(params string[] customIds) => string.Concat(customIds.Select(id =>
        $$$"""{"custom_id":"{{{id}}}","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"say {{{id}}}"}],"max_tokens":8}}""" + "\n"));

    public static MultipartFormDataContent FileForm(string content, string filename = "input.jsonl", string purpose = "batch")
    {
        var form = new MultipartFormDataContent();
        form.Add(new StringContent(purpose), "purpose");
        form.Add(new ByteArrayContent(Encoding.UTF8.GetBytes(content)), "file", filename);
        return form;
    }

    public static async Task<JsonElement> UploadAsync(HttpClient client, string content) =>
        await ReadAsync(await client.PostAsync("v1/files", FileForm(content)), 200);

    public static Task<HttpResponseMessage> CreateBatchAsync(HttpClient client, string fileId, string endpoint = "/v1/chat/completions") =>
        client.PostAsync("v1/batches", Json(new { input_file_id = fileId, endpoint, completion_window = "24h" }));

    public static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    public static async Task<JsonElement> ReadAsync(HttpResponseMessage response, int expectedStatus)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == expectedStatus, $"expected {expectedStatus}, got {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>The body is <c>{"error": {"message", "type", "param", "code"}}</c> with the given type and code.</summary>
    public static JsonElement AssertOpenAiError(JsonElement body, string type, string? code)
    {
        var error = body.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()), body.ToString());
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.True(error.TryGetProperty("param", out _), body.ToString());
        if (code is not null) Assert.Equal(code, error.GetProperty("code").GetString());
        return error;
    }

    public static async Task<JsonElement> PollAsync(HttpClient client, string batchId, string status)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var batch = await ReadAsync(await client.GetAsync($"v1/batches/{batchId}"), 200);
            if (batch.GetProperty("status").GetString() == status) return batch;
            Assert.True(DateTime.UtcNow < deadline, $"batch {batchId} is {batch.GetProperty("status")} after 60 s, expected {status}");
            await Task.Delay(200);
        }
    }
}

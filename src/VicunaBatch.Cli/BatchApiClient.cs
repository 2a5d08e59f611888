using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using VicunaBatch.Core;

namespace VicunaBatch.Cli;

/// <summary>
/// A client of the batch API — <c>serve</c> on this machine or the Function App on Azure, the same endpoints — for
/// <c>submit</c>, <c>status</c> and <c>results</c>. Every failure is an <see cref="ApiClientException"/> whose message
/// is the server's own (<c>error.message</c>) or says which address could not be reached.
/// </summary>
internal sealed class BatchApiClient : IDisposable
{
    private readonly HttpClient _http;

    public BatchApiClient(Uri baseUrl, string apiKey, TimeSpan? timeout = null)
    {
        // "https://host/api" and "https://host/api/" both mean the API under /api
        var root = baseUrl.AbsoluteUri.EndsWith('/') ? baseUrl : new Uri(baseUrl.AbsoluteUri + "/");
        _http = new HttpClient { BaseAddress = root, Timeout = timeout ?? TimeSpan.FromMinutes(10) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        BaseUrl = root;
    }

    public Uri BaseUrl { get; }

    /// <summary>POST v1/files (purpose batch), streamed from the file; returns the file id.</summary>
    public async Task<string> UploadAsync(string path, CancellationToken cancellationToken)
    {
        await using var file = File.OpenRead(path);
        using var form = new MultipartFormDataContent
        {
            { new StringContent("batch"), "purpose" },
            { new StreamContent(file, 1 << 16), "file", Path.GetFileName(path) },
        };
        var uploaded = await SendAsync(HttpMethod.Post, "v1/files", form, cancellationToken);
        return uploaded["id"]?.GetValue<string>() ?? throw new ApiClientException("the server's file object has no id");
    }

    /// <summary>POST v1/batches; the batch object (with <c>webhook.secret</c> once, when the server made it).</summary>
    public Task<JsonObject> CreateBatchAsync(
        string fileId, string endpoint, string? webhookUrl, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["input_file_id"] = fileId, ["endpoint"] = endpoint, ["completion_window"] = "24h" };
        if (webhookUrl is not null) body["webhook"] = new JsonObject { ["url"] = webhookUrl };
        if (metadata.Count > 0) body["metadata"] = new JsonObject(metadata.Select(m => KeyValuePair.Create(m.Key, (JsonNode?)m.Value)));
        return SendAsync(HttpMethod.Post, "v1/batches", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"), cancellationToken);
    }

    public Task<JsonObject> GetBatchAsync(string batchId, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Get, $"v1/batches/{Uri.EscapeDataString(batchId)}", null, cancellationToken);

    /// <summary>GET v1/batches: the latest <paramref name="limit"/> batches of this key, newest first.</summary>
    public Task<JsonObject> ListBatchesAsync(int limit, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Get, $"v1/batches?limit={limit}", null, cancellationToken);

    /// <summary>POST v1/batches/ID/cancel: the batch object, <c>cancelling</c> until its running shards have stopped.</summary>
    public Task<JsonObject> CancelBatchAsync(string batchId, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, $"v1/batches/{Uri.EscapeDataString(batchId)}/cancel", null, cancellationToken);

    /// <summary>GET v1/files/ID/content into <paramref name="target"/>, streamed (an output file can be large).</summary>
    public async Task DownloadAsync(string fileId, string target, CancellationToken cancellationToken)
    {
        using var response = await SendRawAsync(HttpMethod.Get, $"v1/files/{Uri.EscapeDataString(fileId)}/content", null, cancellationToken);
        await using var content = await response.Content.ReadAsStreamAsync(cancellationToken);
        var partial = target + ".partial";
        await using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            await content.CopyToAsync(file, cancellationToken);
        }
        File.Move(partial, target, overwrite: true);
    }

    private async Task<JsonObject> SendAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        using var response = await SendRawAsync(method, path, content, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        try
        {
            return JsonNode.Parse(text) as JsonObject ?? throw new ApiClientException($"{method} {path}: the server's answer is not a JSON object");
        }
        catch (JsonException)
        {
            throw new ApiClientException($"{method} {path}: the server's answer is not JSON (is {BaseUrl} the batch API?)");
        }
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(new HttpRequestMessage(method, path) { Content = content }, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new ApiClientException($"cannot reach {BaseUrl}: {e.Message}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ApiClientException($"{method} {new Uri(BaseUrl, path)}: no answer within {_http.Timeout.TotalSeconds:F0} s");
        }
        if (response.IsSuccessStatusCode) return response;
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            throw new ApiClientException($"{(int)response.StatusCode} {ReasonOf(response.StatusCode)}: {ErrorMessage(text) ?? $"{method} {new Uri(BaseUrl, path)}"}");
        }
    }

    /// <summary>The OpenAI-shaped <c>{"error": {"message"}}</c> of an error answer, if it is one.</summary>
    private static string? ErrorMessage(string text)
    {
        try
        {
            return JsonNode.Parse(text)?["error"]?["message"]?.GetValue<string>();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    private static string ReasonOf(HttpStatusCode code) => code switch
    {
        HttpStatusCode.Unauthorized => "unauthorized (check --api-key)",
        HttpStatusCode.NotFound => "not found",
        HttpStatusCode.BadRequest => "bad request",
        _ => code.ToString(),
    };

    /// <summary>
    /// The batch endpoint a file's requests are for: the first request line's (<c>url</c> of an OpenAI line; simple
    /// <c>prompt</c> lines and <c>.txt</c> files are completions, <c>messages</c> lines chat). Chat when no line parses:
    /// the server then says what is wrong with each.
    /// </summary>
    public static string EndpointOf(string path)
    {
        var format = InputOptions.FormatFromName(path);
        var parser = new LineParser(new InputOptions());
        using var input = File.OpenRead(path);
        foreach (var line in PhysicalLineReader.ReadAsync(input, 0, 1).ToBlockingEnumerable())
        {
            if (line.IsBlank) continue;
            if (parser.Parse(line, format).Request is { } request) return request.Endpoint.ToUrl();
        }
        return BatchEndpoint.ChatCompletions.ToUrl();
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>The batch API refused or could not be reached; the message says which, in one line.</summary>
internal sealed class ApiClientException(string message) : Exception(message);

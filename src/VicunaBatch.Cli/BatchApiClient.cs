using System.Net.Http.Headers;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text;
using VicunaBatch.Core.Formats;

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
            throw new ApiClientException($"{(int)response.StatusCode} {ReasonOf(response.StatusCode)}: {ErrorMessage(text) ?? $"{method} {new Uri(BaseUrl, path)}"}")
            {
                StatusCode = response.StatusCode,
            };
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
    /// The batch endpoint of every request line of a file (<c>url</c> of an OpenAI line; simple <c>prompt</c> lines and
    /// <c>.txt</c> files are completions, <c>messages</c> lines chat): how many lines each has, and its first line.
    /// Lines that do not parse count for none (the server says what is wrong with each).
    /// </summary>
    public static IReadOnlyDictionary<string, (int Lines, int FirstLine)> EndpointsOf(string path)
    {
        var format = InputOptions.FormatFromName(path);
        var parser = new LineParser(new InputOptions());
        var found = new Dictionary<string, (int Lines, int FirstLine)>(StringComparer.Ordinal);
        using var input = File.OpenRead(path);
        foreach (var line in PhysicalLineReader.ReadAsync(input, 0, 1, parser.MaxLineBytes).ToBlockingEnumerable())
        {
            if (line.IsBlank || parser.Parse(line, format).Request is not { } request) continue;
            var url = request.Endpoint.ToUrl();
            found[url] = found.TryGetValue(url, out var seen) ? (seen.Lines + 1, seen.FirstLine) : (1, line.LineNumber);
        }
        return found;
    }

    /// <summary>
    /// The endpoint to create a file's batch for: <paramref name="requested"/>, else its request lines' (chat when none
    /// parses). A batch has one endpoint, and the API refuses a file with lines for another, so a file whose lines
    /// are for another endpoint than the batch's is refused here, before it is uploaded, with the lines' counts.
    /// </summary>
    public static string EndpointFor(string path, string? requested)
    {
        var endpoints = EndpointsOf(path);
        var url = requested ?? (endpoints.Count == 1 ? endpoints.Keys.Single() : endpoints.Count == 0 ? BatchEndpoint.ChatCompletions.ToUrl() : null);
        if (url is not null && endpoints.Keys.All(e => e == url)) return url;
        var counts = string.Join(" and ", endpoints.OrderBy(e => e.Value.FirstLine).Select(e =>
            $"{e.Value.Lines} {(e.Value.Lines == 1 ? "line" : "lines")} for {e.Key} (the first on line {e.Value.FirstLine})"));
        throw new UsageException(url is null
            ? $"{Path.GetFileName(path)} has {counts}; a batch has one endpoint: split the file by endpoint, or run it on this machine with `vicuna-batch run`, which takes both"
            : $"{Path.GetFileName(path)} has {counts}; a batch for {url} takes only lines for it: split the file by endpoint, or run it on this machine with `vicuna-batch run`, which takes both");
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>The batch API refused or could not be reached; the message says which, in one line.</summary>
internal sealed class ApiClientException(string message) : Exception(message)
{
    /// <summary>The API's answer when it refused; null when it could not be reached or its answer was no API's.</summary>
    public HttpStatusCode? StatusCode { get; init; }
}

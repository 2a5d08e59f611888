using System.Security.Cryptography;
using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;

namespace VicunaBatch.Api;

/// <summary>The parsed body of <c>POST /v1/batches</c>, or the first problem with it (message and param).
/// <see cref="OutputExpiresAfter"/>: <c>output_expires_after.seconds</c>, null when absent.</summary>
internal sealed record BatchCreateBody(
    string InputFileId, BatchEndpoint Endpoint, IReadOnlyDictionary<string, string>? Metadata, WebhookSettings? Webhook,
    string? WebhookSecret, bool SecretGenerated)
{
    public long? OutputExpiresAfter { get; init; }

    public static readonly IReadOnlyList<string> WebhookEvents = ["batch.completed", "batch.failed", "batch.cancelled", "batch.expired"];

    public static (BatchCreateBody? Body, string? Error, string? Param) Parse(JsonElement root, ApiOptions options)
    {
        if (root.ValueKind != JsonValueKind.Object) return Fail("The request body must be a JSON object.", null);
        if (Text(root, "input_file_id") is not { } fileId) return Fail("Missing required parameter: 'input_file_id'.", "input_file_id");
        var endpointUrl = Text(root, "endpoint");
        if (endpointUrl is null) return Fail("Missing required parameter: 'endpoint'.", "endpoint");
        if (!BatchEndpoints.TryParseUrl(endpointUrl, out var endpoint))
            return Fail($"Unsupported endpoint '{Abbreviate(endpointUrl)}': use '{BatchEndpoints.ChatCompletionsUrl}' or '{BatchEndpoints.CompletionsUrl}'.", "endpoint");
        if (CompletionWindowProblem(root) is { } windowProblem) return Fail(windowProblem, "completion_window");
        var (outputExpiresAfter, expiryProblem, expiryParam) = ExpiresAfterParam.FromJson(root, "output_expires_after");
        if (expiryProblem is not null) return Fail(expiryProblem, expiryParam);

        Dictionary<string, string>? metadata = null;
        if (root.TryGetProperty("metadata", out var meta) && meta.ValueKind != JsonValueKind.Null)
        {
            if (meta.ValueKind != JsonValueKind.Object) return Fail("'metadata' must be an object of strings.", "metadata");
            metadata = [];
            foreach (var pair in meta.EnumerateObject())
            {
                if (pair.Value.ValueKind != JsonValueKind.String) return Fail($"metadata '{Abbreviate(pair.Name)}' must be a string.", "metadata");
                metadata[pair.Name] = pair.Value.GetString()!;
            }
            if (MetadataLimits.Check(metadata) is { } problem) return Fail(problem, "metadata");
        }

        if (!root.TryGetProperty("webhook", out var hook) || hook.ValueKind == JsonValueKind.Null)
            return (new BatchCreateBody(fileId, endpoint, metadata, null, null, false) { OutputExpiresAfter = outputExpiresAfter }, null, null);
        var (webhook, secret, error) = ParseWebhook(hook, options);
        if (error is not null) return Fail(error, "webhook");
        bool generated = secret is null;
        secret ??= "whsec_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        return (new BatchCreateBody(fileId, endpoint, metadata, webhook, secret, generated) { OutputExpiresAfter = outputExpiresAfter }, null, null);
    }

    /// <summary>As OpenAI: <c>completion_window</c> is required and is the string <c>"24h"</c>.</summary>
    private static string? CompletionWindowProblem(JsonElement root)
    {
        if (!root.TryGetProperty("completion_window", out var window)) return "Missing required parameter: 'completion_window' (use '24h').";
        if (window.ValueKind != JsonValueKind.String)
            return $"Invalid type for 'completion_window': expected the string '24h', but got {window.ValueKind.ToString().ToLowerInvariant()}.";
        var text = window.GetString();
        return text == "24h" ? null : $"Invalid value for 'completion_window': '{Abbreviate(text!)}'. Supported values are: '24h'.";
    }

    private static (WebhookSettings?, string?, string?) ParseWebhook(JsonElement hook, ApiOptions options)
    {
        if (hook.ValueKind != JsonValueKind.Object) return (null, null, "'webhook' must be an object {url, secret?, events?}.");
        var url = Text(hook, "url");
        if (url is null || !Uri.TryCreate(url, UriKind.Absolute, out var uri)) return (null, null, "webhook.url must be an absolute URL.");
        // scheme and address ranges: WebhookUrlPolicy, checked by the handler (it may resolve DNS)
        var secret = Text(hook, "secret");
        if (secret is not null && (!secret.StartsWith("whsec_", StringComparison.Ordinal) || secret.Length < 6 + 24))
            return (null, null, "webhook.secret must be 'whsec_' followed by base64 of at least 18 bytes.");
        var events = new List<string>();
        if (hook.TryGetProperty("events", out var list) && list.ValueKind != JsonValueKind.Null)
        {
            if (list.ValueKind != JsonValueKind.Array) return (null, null, "webhook.events must be an array.");
            foreach (var e in list.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String || !WebhookEvents.Contains(e.GetString()))
                    return (null, null, $"Unknown webhook event {e}; use {string.Join(", ", WebhookEvents)}.");
                events.Add(e.GetString()!);
            }
        }
        return (new WebhookSettings(url, events.Count > 0 ? events : WebhookEvents), secret, null);
    }

    /// <summary>A value as an error message quotes it: at most 40 characters of it.</summary>
    internal static string Abbreviate(string text) => text.Length <= 40 ? text : text[..40] + "...";

    private static string? Text(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static (BatchCreateBody?, string?, string?) Fail(string message, string? param) => (null, message, param);
}

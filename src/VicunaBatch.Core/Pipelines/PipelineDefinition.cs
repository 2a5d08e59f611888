using System.Text.Json;
using System.Text.RegularExpressions;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Core.Pipelines;

/// <summary>Where documents come from or summaries go: a local folder or a blob container, and a name prefix inside it.</summary>
public sealed record PipelineLocation(string? Folder, string? Container, string Prefix)
{
    public static PipelineLocation OfFolder(string folder) => new(folder, null, "");
}

/// <summary>Which documents of the source count: file types (".txt", ".md", ".jsonl") and the text field of JSONL lines.</summary>
public sealed record PipelineSource(PipelineLocation Location, IReadOnlyList<string> FileTypes, string TextField);

/// <summary>Chunks of <see cref="ChunkTokens"/> tokens, each overlapping the previous by <see cref="OverlapTokens"/>.</summary>
public sealed record ChunkingOptions(int ChunkTokens, int OverlapTokens);

/// <summary>The pipeline's run-end webhook: its URL and its own <c>whsec_</c> signing secret.</summary>
public sealed record PipelineWebhook(string Url, string Secret)
{
    /// <summary>
    /// A definition's <c>webhook</c> object (<c>{"url", "secret"}</c>), of a pipeline or of a scheduled evaluation: an
    /// absolute http(s) URL and a <c>whsec_</c> secret, or a <see cref="PipelineDefinitionException"/> naming the field.
    /// </summary>
    public static PipelineWebhook Parse(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object) throw new PipelineDefinitionException("webhook", "must be a JSON object");
        foreach (var property in element.EnumerateObject())
            if (property.Name is not ("url" or "secret"))
                throw new PipelineDefinitionException("webhook." + property.Name, "unknown field (known: url, secret)");
        string Field(string name) => element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString()!.Length > 0
            ? value.GetString()! : throw new PipelineDefinitionException("webhook." + name, "is required (a non-empty string)");
        var url = Field("url");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
            throw new PipelineDefinitionException("webhook.url", $"\"{url}\" is not an absolute http(s) URL");
        var secret = Field("secret");
        try { _ = WebhookSigner.DecodeSecret(secret); }
        catch (ArgumentException) { throw new PipelineDefinitionException("webhook.secret", $"must be \"{WebhookSigner.SecretPrefix}\" followed by base64 key bytes"); }
        return new PipelineWebhook(url, secret);
    }
}

/// <summary>
/// A summarization pipeline, read from JSON (snake_case) by <see cref="Parse"/>, which rejects a bad definition with a
/// <see cref="PipelineDefinitionException"/> naming the field. Defaults: file types .txt/.md/.jsonl, text field "text",
/// reduce prompt = prompt, max_tokens 256, temperature 0, max document 1 MiB, chunks of 1,024 tokens overlapping by 64.
/// </summary>
public sealed partial record PipelineDefinition(
    string Name,
    PipelineSource Source,
    PromptTemplate Prompt,
    PromptTemplate ReducePrompt,
    int MaxTokens,
    float Temperature,
    PipelineSchedule? Schedule,
    PipelineLocation Output,
    PipelineWebhook? Webhook,
    long MaxDocumentBytes,
    ChunkingOptions Chunking)
{
    public static readonly IReadOnlyList<string> SupportedFileTypes = [".txt", ".md", ".jsonl"];
    private static readonly HashSet<string> Fields =
        ["name", "source", "prompt", "reduce_prompt", "max_tokens", "temperature", "schedule", "output", "webhook", "max_document_bytes", "chunking"];

    public static PipelineDefinition Parse(string json)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(json).RootElement; }
        catch (JsonException e) { throw new PipelineDefinitionException("", $"not JSON: {e.Message}"); }
        if (root.ValueKind != JsonValueKind.Object) throw new PipelineDefinitionException("", "the definition must be a JSON object");
        RejectUnknown(root, "", Fields);

        var name = RequiredString(root, "name");
        if (!NamePattern().IsMatch(name))
            throw new PipelineDefinitionException("name", $"\"{name}\" must be 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit");
        var source = ParseSource(Required(root, "source", JsonValueKind.Object));
        var prompt = PromptTemplate.Parse(RequiredString(root, "prompt"), "prompt");
        var reduce = Optional(root, "reduce_prompt", JsonValueKind.String) is { } r ? PromptTemplate.Parse(r.GetString()!, "reduce_prompt") : prompt;
        int maxTokens = OptionalInt(root, "max_tokens", 256, min: 1);
        float temperature = Optional(root, "temperature", JsonValueKind.Number) is { } t ? t.GetSingle() : 0f;
        if (temperature is < 0 or > 2) throw new PipelineDefinitionException("temperature", $"{temperature} must be between 0 and 2");
        var schedule = Optional(root, "schedule", JsonValueKind.String) is { } s ? PipelineSchedule.Parse(s.GetString()!, "schedule") : null;
        var output = ParseLocation(Required(root, "output", JsonValueKind.Object), "output");
        var webhook = Optional(root, "webhook", JsonValueKind.Object) is { } w ? PipelineWebhook.Parse(w) : null;
        long maxBytes = Optional(root, "max_document_bytes", JsonValueKind.Number) is { } m
            ? (m.TryGetInt64(out var v) && v > 0 ? v : throw new PipelineDefinitionException("max_document_bytes", $"{m} must be a positive integer"))
            : 1 << 20;
        var chunking = Optional(root, "chunking", JsonValueKind.Object) is { } c ? ParseChunking(c, maxTokens) : new ChunkingOptions(1024, 64);
        if (maxTokens * 2 > chunking.ChunkTokens)
            throw new PipelineDefinitionException("max_tokens", $"{maxTokens} must be at most half of chunking.chunk_tokens ({chunking.ChunkTokens}) so two summaries fit one reduce request");
        return new PipelineDefinition(name, source, prompt, reduce, maxTokens, temperature, schedule, output, webhook, maxBytes, chunking);
    }

    private static PipelineSource ParseSource(JsonElement element)
    {
        RejectUnknown(element, "source.", ["folder", "container", "prefix", "file_types", "text_field"]);
        var location = ParseLocation(element, "source");
        IReadOnlyList<string> types = SupportedFileTypes;
        if (Optional(element, "file_types", JsonValueKind.Array, "source.") is { } array)
        {
            var list = new List<string>();
            foreach (var item in array.EnumerateArray())
            {
                var type = item.ValueKind == JsonValueKind.String ? item.GetString()!.ToLowerInvariant() : "";
                if (!SupportedFileTypes.Contains(type))
                    throw new PipelineDefinitionException("source.file_types", $"{(item.ValueKind == JsonValueKind.String ? $"\"{item.GetString()}\"" : item.GetRawText())} is not one of {string.Join(", ", SupportedFileTypes)}");
                list.Add(type);
            }
            if (list.Count == 0) throw new PipelineDefinitionException("source.file_types", "must name at least one file type");
            types = list;
        }
        var field = Optional(element, "text_field", JsonValueKind.String, "source.")?.GetString() ?? "text";
        if (field.Length == 0) throw new PipelineDefinitionException("source.text_field", "must not be empty");
        return new PipelineSource(location, types, field);
    }

    private static PipelineLocation ParseLocation(JsonElement element, string field)
    {
        if (field == "output") RejectUnknown(element, "output.", ["folder", "container", "prefix"]);
        var folder = Optional(element, "folder", JsonValueKind.String, field + ".")?.GetString();
        var container = Optional(element, "container", JsonValueKind.String, field + ".")?.GetString();
        if ((folder is null) == (container is null))
            throw new PipelineDefinitionException(field, "needs exactly one of \"folder\" (a local path) or \"container\" (a blob container)");
        if (folder is { Length: 0 }) throw new PipelineDefinitionException(field + ".folder", "must not be empty");
        if (container is not null && !ContainerPattern().IsMatch(container))
            throw new PipelineDefinitionException(field + ".container", $"\"{container}\" is not a container name (3-63 of a-z, 0-9, '-')");
        var prefix = Optional(element, "prefix", JsonValueKind.String, field + ".")?.GetString() ?? "";
        if (prefix.StartsWith('/') || prefix.Contains('\\') || prefix.Split('/').Contains(".."))
            throw new PipelineDefinitionException(field + ".prefix", $"\"{prefix}\" must be a relative blob name prefix ('/' separators, no '..')");
        return new PipelineLocation(folder, container, prefix);
    }

    private static ChunkingOptions ParseChunking(JsonElement element, int maxTokens)
    {
        RejectUnknown(element, "chunking.", ["chunk_tokens", "overlap_tokens"]);
        int chunk = OptionalInt(element, "chunk_tokens", 1024, min: 8, prefix: "chunking.");
        int overlap = OptionalInt(element, "overlap_tokens", Math.Min(64, chunk / 4), min: 0, prefix: "chunking.");
        if (overlap >= chunk)
            throw new PipelineDefinitionException("chunking.overlap_tokens", $"{overlap} must be less than chunking.chunk_tokens ({chunk})");
        return new ChunkingOptions(chunk, overlap);
    }

    private static void RejectUnknown(JsonElement element, string prefix, IReadOnlyCollection<string> known)
    {
        foreach (var property in element.EnumerateObject())
            if (!known.Contains(property.Name))
                throw new PipelineDefinitionException(prefix + property.Name, $"unknown field (known: {string.Join(", ", known)})");
    }

    private static JsonElement Required(JsonElement element, string name, JsonValueKind kind, string prefix = "") =>
        Optional(element, name, kind, prefix) ?? throw new PipelineDefinitionException(prefix + name, "is required");

    private static string RequiredString(JsonElement element, string name, string prefix = "")
    {
        var value = Required(element, name, JsonValueKind.String, prefix).GetString()!;
        return value.Length > 0 ? value : throw new PipelineDefinitionException(prefix + name, "must not be empty");
    }

    private static JsonElement? Optional(JsonElement element, string name, JsonValueKind kind, string prefix = "")
    {
        if (!element.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != kind)
            throw new PipelineDefinitionException(prefix + name, $"must be a JSON {kind.ToString().ToLowerInvariant()}, not {value.ValueKind.ToString().ToLowerInvariant()}");
        return value;
    }

    private static int OptionalInt(JsonElement element, string name, int fallback, int min, string prefix = "")
    {
        if (Optional(element, name, JsonValueKind.Number, prefix) is not { } value) return fallback;
        if (!value.TryGetInt32(out var n) || n < min)
            throw new PipelineDefinitionException(prefix + name, $"{value} must be an integer >= {min}");
        return n;
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,31}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")]
    private static partial Regex ContainerPattern();
}

/// <summary>A pipeline definition that cannot run; <see cref="Field"/> is the JSON path of the culprit ("" = the whole document).</summary>
public sealed class PipelineDefinitionException(string field, string reason)
    : Exception(field.Length > 0 ? $"{field}: {reason}" : reason)
{
    public string Field { get; } = field;
    public string Reason { get; } = reason;
}

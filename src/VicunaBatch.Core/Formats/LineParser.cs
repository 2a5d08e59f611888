using System.Text;
using System.Text.Json;

namespace VicunaBatch.Core.Formats;

/// <summary>
/// Parses one physical input line into a <see cref="BatchRequest"/> or a <see cref="LineError"/>.
/// Stateless and thread-safe; duplicate custom_ids are the caller's concern (they need the whole file).
/// </summary>
public sealed class LineParser
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private static readonly HashSet<string> SimpleFields =
        ["custom_id", "model", "prompt", "messages", "max_tokens", "temperature", "top_p", "seed", "stop", "response_format"];

    private readonly InputOptions _options;

    public LineParser(InputOptions options)
    {
        options.Validate();
        _options = options;
    }

    public static string DefaultCustomId(int lineNumber) => $"line-{lineNumber}";

    /// <summary>The longest line worth reading whole (<see cref="InputOptions.MaxLineBytes"/>): read with this limit.</summary>
    public int MaxLineBytes => _options.MaxLineBytes;

    /// <summary>Parses a non-blank line.</summary>
    public ParsedLine Parse(InputLine line, InputFormat format)
    {
        try
        {
            if (line.IsOverLimit)
            {
                throw new LineRejection(LineErrorCode.LineTooLong, $"the line is {line.ByteLength} bytes, over the limit of {_options.MaxLineBytes} (Input:MaxLineBytes)")
                {
                    CustomId = format == InputFormat.Jsonl ? CustomIdInHead(line.Content) : null,
                };
            }
            var request = format == InputFormat.Text ? ParseText(line) : ParseJson(line);
            return new ParsedLine(request, null);
        }
        catch (LineRejection e)
        {
            var id = e.CustomId ?? DefaultCustomId(line.LineNumber);
            return new ParsedLine(null, new LineError(line.LineNumber, id, e.Code, e.Message, e.Param)) { RefusedModel = e.Model };
        }
    }

    private static BatchRequest ParseText(InputLine line)
    {
        string prompt;
        try { prompt = StrictUtf8.GetString(line.Content); }
        catch (DecoderFallbackException) { throw new LineRejection(LineErrorCode.InvalidEncoding, "line is not valid UTF-8"); }
        return new BatchRequest
        {
            CustomId = DefaultCustomId(line.LineNumber), LineNumber = line.LineNumber,
            Endpoint = BatchEndpoint.Completions, Prompt = prompt,
        };
    }

    private BatchRequest ParseJson(InputLine line)
    {
        // JsonDocument checks UTF-8 inside strings only when a string is read: refuse the line before that
        if (!System.Text.Unicode.Utf8.IsValid(line.Content))
            throw new LineRejection(LineErrorCode.InvalidEncoding, "line is not valid UTF-8");
        JsonDocument document;
        try { document = JsonDocument.Parse(line.Content); }
        catch (JsonException e) { throw new LineRejection(LineErrorCode.InvalidJson, $"invalid JSON: {e.Message}"); }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new LineRejection(LineErrorCode.NotAnObject, $"line must be a JSON object, not {root.ValueKind.ToString().ToLowerInvariant()}");
            var customId = ReadCustomId(root, line.LineNumber);
            try
            {
                bool isOpenAi = root.TryGetProperty("body", out _) || root.TryGetProperty("url", out _) || root.TryGetProperty("method", out _);
                return isOpenAi ? ParseOpenAi(root, customId, line.LineNumber) : ParseSimple(root, customId, line.LineNumber);
            }
            catch (LineRejection e)
            {
                e.CustomId = customId;
                e.Model = ModelNamedIn(root);
                throw;
            }
        }
    }

    private string ReadCustomId(JsonElement root, int lineNumber)
    {
        if (!TryGet(root, "custom_id", out var value)) return DefaultCustomId(lineNumber);
        if (value.ValueKind != JsonValueKind.String)
            throw new LineRejection(LineErrorCode.InvalidCustomId, "custom_id must be a string", "custom_id");
        var id = value.GetString()!;
        return CustomIdProblem(id) is { } problem ? throw new LineRejection(LineErrorCode.InvalidCustomId, problem, "custom_id") : id;
    }

    private string? CustomIdProblem(string id) =>
        id.Length == 0 || string.IsNullOrWhiteSpace(id) ? "custom_id must not be empty"
        : id.Length > _options.MaxCustomIdLength ? $"custom_id is {id.Length} characters long; the limit is {_options.MaxCustomIdLength}"
        : null;

    /// <summary>
    /// The custom_id a line too long to parse names in its head (<see cref="PhysicalLineReader.HeadBytes"/>), so its error
    /// line can say which request it was: found when it comes before the long field, as in OpenAI's examples; else null.
    /// </summary>
    private string? CustomIdInHead(byte[] head)
    {
        var reader = new Utf8JsonReader(head, isFinalBlock: false, state: default);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isCustomId = reader.ValueTextEquals("custom_id"u8);
                if (!reader.Read()) return null;
                if (isCustomId) return reader.TokenType == JsonTokenType.String && reader.GetString() is { } id && CustomIdProblem(id) is null ? id : null;
                if (!reader.TrySkip()) return null;
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { } // broken JSON or UTF-8 in the head
        return null;
    }

    private static BatchRequest ParseOpenAi(JsonElement root, string customId, int lineNumber)
    {
        if (!TryGet(root, "method", out var method) || method.ValueKind != JsonValueKind.String || method.GetString() != "POST")
            throw new LineRejection(LineErrorCode.InvalidMethod, "method must be \"POST\"", "method");
        if (!TryGet(root, "url", out var url) || url.ValueKind != JsonValueKind.String)
            throw new LineRejection(LineErrorCode.UnknownEndpoint, $"url must be \"{BatchEndpoints.ChatCompletionsUrl}\" or \"{BatchEndpoints.CompletionsUrl}\"", "url");
        if (!BatchEndpoints.TryParseUrl(url.GetString(), out var endpoint))
            throw new LineRejection(LineErrorCode.UnknownEndpoint, $"unknown endpoint \"{url.GetString()}\"; expected \"{BatchEndpoints.ChatCompletionsUrl}\" or \"{BatchEndpoints.CompletionsUrl}\"", "url");
        if (!TryGet(root, "body", out var body))
            throw new LineRejection(LineErrorCode.MissingBody, "body is required", "body");
        if (body.ValueKind != JsonValueKind.Object)
            throw new LineRejection(LineErrorCode.InvalidType, "body must be an object", "body");

        bool hasPrompt = TryGet(body, "prompt", out _), hasMessages = TryGet(body, "messages", out _);
        if (hasPrompt && hasMessages)
            throw new LineRejection(LineErrorCode.AmbiguousPrompt, "body has both prompt and messages");
        if (endpoint == BatchEndpoint.ChatCompletions && !hasMessages)
            throw new LineRejection(LineErrorCode.MissingPrompt, $"{BatchEndpoints.ChatCompletionsUrl} requires body.messages", "messages");
        if (endpoint == BatchEndpoint.Completions && !hasPrompt)
            throw new LineRejection(LineErrorCode.MissingPrompt, $"{BatchEndpoints.CompletionsUrl} requires body.prompt", "prompt");
        RequestParameters.Check(body, endpoint);
        return RequestFields.Read(body, customId, lineNumber, endpoint);
    }

    private static BatchRequest ParseSimple(JsonElement root, string customId, int lineNumber)
    {
        foreach (var property in root.EnumerateObject())
            if (!SimpleFields.Contains(property.Name))
                throw new LineRejection(LineErrorCode.UnknownField, $"unknown field \"{property.Name}\"", property.Name);
        bool hasPrompt = TryGet(root, "prompt", out _), hasMessages = TryGet(root, "messages", out _);
        if (hasPrompt && hasMessages)
            throw new LineRejection(LineErrorCode.AmbiguousPrompt, "line has both prompt and messages");
        if (!hasPrompt && !hasMessages)
            throw new LineRejection(LineErrorCode.MissingPrompt, "line needs prompt or messages");
        if (hasPrompt && root.GetProperty("prompt").ValueKind != JsonValueKind.String) // token ids and prompt arrays are OpenAI lines' forms
            throw new LineRejection(LineErrorCode.InvalidType, "a simple line's prompt must be a string; token ids and several prompts need an OpenAI Batch line", "prompt");
        var endpoint = hasMessages ? BatchEndpoint.ChatCompletions : BatchEndpoint.Completions;
        return RequestFields.Read(root, customId, lineNumber, endpoint);
    }

    /// <summary>The model a refused line names where its request would (an OpenAI line's <c>body.model</c>, a simple line's
    /// <c>model</c>), when that is a string; else null.</summary>
    private static string? ModelNamedIn(JsonElement root)
    {
        var holder = TryGet(root, "body", out var body) ? body : root;
        return holder.ValueKind == JsonValueKind.Object && TryGet(holder, "model", out var model) && model.ValueKind == JsonValueKind.String
            ? model.GetString() : null;
    }

    /// <summary>Gets a property that is present and not JSON null.</summary>
    internal static bool TryGet(JsonElement obj, string name, out JsonElement value) =>
        obj.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;
}

/// <summary>A line was rejected; carries the code, message and param of its <see cref="LineError"/>.</summary>
internal sealed class LineRejection(LineErrorCode code, string message, string? param = null) : Exception(message)
{
    public LineErrorCode Code { get; } = code;
    public string? Param { get; } = param;
    public string? CustomId { get; set; }

    /// <summary>The model the refused line names (<see cref="ParsedLine.RefusedModel"/>).</summary>
    public string? Model { get; set; }
}

using System.Text;
using System.Text.Json;

namespace VicunaBatch.Core.Formats;

/// <summary>
/// Reads <c>messages</c> as OpenAI's chat completions take them, into what a text-only model without tools can honour:
/// the roles of <see cref="ChatTurn.Roles"/>, and content as a string or an array of text parts. What it cannot honour
/// (tool messages and calls, names, image, audio and file parts) is <c>unsupported_parameter</c> naming where it is.
/// </summary>
internal static class MessageFields
{
    private const string NoTools = "this model has no tool calling";

    /// <summary>Message fields this server refuses with any value but null, and why.</summary>
    private static readonly Dictionary<string, string> RefusedFields = new(StringComparer.Ordinal)
    {
        ["tool_calls"] = NoTools,
        ["tool_call_id"] = NoTools,
        ["function_call"] = NoTools,
        ["name"] = "participant names are not supported: the chat template has no place for them",
        ["refusal"] = "a refusal in the conversation is not supported",
        ["audio"] = "this model reads and answers text only",
    };

    /// <summary>Content part types OpenAI takes that this server does not, and why.</summary>
    private static readonly Dictionary<string, string> RefusedParts = new(StringComparer.Ordinal)
    {
        ["image_url"] = "this model reads text only",
        ["input_audio"] = "this model reads text only",
        ["file"] = "this model reads text only",
        ["refusal"] = "a refusal in the conversation is not supported",
    };

    public static IReadOnlyList<ChatTurn> Read(JsonElement messages)
    {
        if (messages.ValueKind != JsonValueKind.Array)
            throw new LineRejection(LineErrorCode.InvalidType, "messages must be an array", "messages");
        if (messages.GetArrayLength() == 0)
            throw new LineRejection(LineErrorCode.InvalidMessages, "messages must not be empty", "messages");
        var turns = new List<ChatTurn>();
        foreach (var message in messages.EnumerateArray()) turns.Add(ReadTurn(message, $"messages[{turns.Count}]"));
        return turns;
    }

    private static ChatTurn ReadTurn(JsonElement message, string path)
    {
        if (message.ValueKind != JsonValueKind.Object)
            throw new LineRejection(LineErrorCode.InvalidMessages, $"{path} must be an object", path);
        var role = ReadRole(message, path);
        foreach (var field in message.EnumerateObject())
        {
            if (field.Name is "role" or "content" || field.Value.ValueKind == JsonValueKind.Null) continue;
            var fieldPath = $"{path}.{field.Name}";
            throw RefusedFields.TryGetValue(field.Name, out var why)
                ? new LineRejection(LineErrorCode.UnsupportedParameter, $"{fieldPath} is not supported: {why}", fieldPath)
                : new LineRejection(LineErrorCode.UnknownField, $"unknown field \"{field.Name}\" in {path}", fieldPath);
        }
        return new ChatTurn(role, ReadContent(message, path));
    }

    private static string ReadRole(JsonElement message, string path)
    {
        var rolePath = path + ".role";
        if (!LineParser.TryGet(message, "role", out var role) || role.ValueKind != JsonValueKind.String)
            throw new LineRejection(LineErrorCode.InvalidMessages, $"{rolePath} must be one of {string.Join(", ", ChatTurn.Roles)}", rolePath);
        var name = role.GetString()!;
        if (name is "tool" or "function")
            throw new LineRejection(LineErrorCode.UnsupportedParameter, $"{rolePath} \"{name}\" is not supported: {NoTools}", rolePath);
        if (!ChatTurn.Roles.Contains(name))
            throw new LineRejection(LineErrorCode.InvalidMessages, $"{rolePath} must be one of {string.Join(", ", ChatTurn.Roles)}", rolePath);
        return name;
    }

    /// <summary>
    /// A string, or the text of an array of text parts joined with nothing between them: OpenAI's renderer puts a
    /// message's content items one after another (openai/harmony, <c>src/encoding.rs</c>, <c>Render&lt;Message&gt;</c>).
    /// </summary>
    private static string ReadContent(JsonElement message, string path)
    {
        var contentPath = path + ".content";
        if (!LineParser.TryGet(message, "content", out var content) || content.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
            throw new LineRejection(LineErrorCode.InvalidMessages, $"{contentPath} must be a string or an array of content parts", contentPath);
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.GetArrayLength() == 0)
            throw new LineRejection(LineErrorCode.InvalidMessages, $"{contentPath} must not be an empty array", contentPath);
        var text = new StringBuilder();
        int i = 0;
        foreach (var part in content.EnumerateArray()) text.Append(ReadTextPart(part, $"{contentPath}[{i++}]"));
        return text.ToString();
    }

    private static string ReadTextPart(JsonElement part, string path)
    {
        var typePath = path + ".type";
        if (part.ValueKind != JsonValueKind.Object || !LineParser.TryGet(part, "type", out var type) || type.ValueKind != JsonValueKind.String)
            throw new LineRejection(LineErrorCode.InvalidMessages, $"{path} must be a content part: an object with a type", path);
        var name = type.GetString()!;
        if (RefusedParts.TryGetValue(name, out var why))
            throw new LineRejection(LineErrorCode.UnsupportedParameter, $"{path} of type \"{name}\" is not supported: {why}", typePath);
        if (name != "text")
            throw new LineRejection(LineErrorCode.InvalidMessages, $"{typePath} \"{name}\" is not a content part type", typePath);
        foreach (var field in part.EnumerateObject())
            if (field.Name is not ("type" or "text"))
                throw new LineRejection(LineErrorCode.UnknownField, $"unknown field \"{field.Name}\" in {path}", $"{path}.{field.Name}");
        if (!part.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
            throw new LineRejection(LineErrorCode.InvalidMessages, $"{path}.text must be a string", $"{path}.text");
        return text.GetString()!;
    }
}

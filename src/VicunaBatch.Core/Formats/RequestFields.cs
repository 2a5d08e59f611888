using System.Text.Json;

namespace VicunaBatch.Core.Formats;

/// <summary>Reads the request fields shared by the OpenAI body and the simple line, with range checks.</summary>
internal static class RequestFields
{
    public static BatchRequest Read(JsonElement obj, string customId, int lineNumber, BatchEndpoint endpoint)
    {
        int? maxTokens = ReadMaxTokens(obj);
        double? temperature = ReadDouble(obj, "temperature");
        if (temperature is < 0 or > 2)
            throw new LineRejection(LineErrorCode.InvalidParameter, $"temperature must be between 0 and 2, got {temperature}");
        double? topP = ReadDouble(obj, "top_p");
        if (topP is <= 0 or > 1)
            throw new LineRejection(LineErrorCode.InvalidParameter, $"top_p must be in (0, 1], got {topP}");
        return new BatchRequest
        {
            CustomId = customId, LineNumber = lineNumber, Endpoint = endpoint,
            Model = ReadString(obj, "model"),
            Prompt = endpoint == BatchEndpoint.Completions ? ReadPrompt(obj) : null,
            Messages = endpoint == BatchEndpoint.ChatCompletions ? ReadMessages(obj) : [],
            MaxTokens = maxTokens, Temperature = temperature, TopP = topP,
            Seed = ReadSeed(obj), Stop = ReadStop(obj),
            ResponseFormat = ResponseFormat.Read(obj, endpoint),
        };
    }

    private static int? ReadMaxTokens(JsonElement obj)
    {
        var name = LineParser.TryGet(obj, "max_tokens", out _) ? "max_tokens" : "max_completion_tokens";
        if (!LineParser.TryGet(obj, name, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var n))
            throw new LineRejection(LineErrorCode.InvalidType, $"{name} must be an integer");
        if (n < 1 || n > int.MaxValue)
            throw new LineRejection(LineErrorCode.InvalidParameter, $"{name} must be at least 1, got {n}");
        return (int)n;
    }

    private static long? ReadSeed(JsonElement obj)
    {
        if (!LineParser.TryGet(obj, "seed", out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var seed))
            throw new LineRejection(LineErrorCode.InvalidType, "seed must be an integer");
        return seed;
    }

    private static double? ReadDouble(JsonElement obj, string name)
    {
        if (!LineParser.TryGet(obj, name, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number)
            throw new LineRejection(LineErrorCode.InvalidType, $"{name} must be a number");
        return value.GetDouble();
    }

    private static string? ReadString(JsonElement obj, string name)
    {
        if (!LineParser.TryGet(obj, name, out var value)) return null;
        if (value.ValueKind != JsonValueKind.String)
            throw new LineRejection(LineErrorCode.InvalidType, $"{name} must be a string");
        return value.GetString();
    }

    private static string ReadPrompt(JsonElement obj)
    {
        var prompt = ReadString(obj, "prompt")!;
        if (prompt.Length == 0) throw new LineRejection(LineErrorCode.InvalidParameter, "prompt must not be empty");
        return prompt;
    }

    private static IReadOnlyList<ChatTurn> ReadMessages(JsonElement obj)
    {
        var messages = obj.GetProperty("messages");
        if (messages.ValueKind != JsonValueKind.Array)
            throw new LineRejection(LineErrorCode.InvalidType, "messages must be an array");
        if (messages.GetArrayLength() == 0)
            throw new LineRejection(LineErrorCode.InvalidMessages, "messages must not be empty");
        var turns = new List<ChatTurn>();
        foreach (var message in messages.EnumerateArray())
        {
            int i = turns.Count;
            if (message.ValueKind != JsonValueKind.Object)
                throw new LineRejection(LineErrorCode.InvalidMessages, $"messages[{i}] must be an object");
            if (!LineParser.TryGet(message, "role", out var role) || role.ValueKind != JsonValueKind.String
                || !ChatTurn.Roles.Contains(role.GetString()!))
                throw new LineRejection(LineErrorCode.InvalidMessages, $"messages[{i}].role must be one of system, user, assistant");
            if (!LineParser.TryGet(message, "content", out var content) || content.ValueKind != JsonValueKind.String)
                throw new LineRejection(LineErrorCode.InvalidMessages, $"messages[{i}].content must be a string");
            turns.Add(new ChatTurn(role.GetString()!, content.GetString()!));
        }
        return turns;
    }

    private static IReadOnlyList<string> ReadStop(JsonElement obj)
    {
        if (!LineParser.TryGet(obj, "stop", out var value)) return [];
        if (value.ValueKind == JsonValueKind.String) return [CheckStop(value.GetString()!)];
        if (value.ValueKind != JsonValueKind.Array)
            throw new LineRejection(LineErrorCode.InvalidType, "stop must be a string or an array of strings");
        var stops = new List<string>();
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                throw new LineRejection(LineErrorCode.InvalidType, "stop must be a string or an array of strings");
            stops.Add(CheckStop(item.GetString()!));
        }
        return stops;
    }

    private static string CheckStop(string stop) =>
        stop.Length > 0 ? stop : throw new LineRejection(LineErrorCode.InvalidParameter, "stop strings must not be empty");
}

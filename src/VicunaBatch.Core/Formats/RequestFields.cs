using System.Text.Json;

namespace VicunaBatch.Core.Formats;

/// <summary>
/// Reads the request fields shared by the OpenAI body and the simple line, with range checks: the prompt
/// (<see cref="PromptFields"/>) or messages (<see cref="MessageFields"/>), the choices (<see cref="ChoiceFields"/>) and
/// the sampling parameters. Which other
/// parameters an OpenAI body may carry is <see cref="RequestParameters"/>' table.
/// </summary>
internal static class RequestFields
{
    public static BatchRequest Read(JsonElement obj, string customId, int lineNumber, BatchEndpoint endpoint)
    {
        int? maxTokens = ReadMaxTokens(obj);
        double? temperature = ReadDouble(obj, "temperature");
        if (temperature is < 0 or > 2)
            throw new LineRejection(LineErrorCode.InvalidParameter, $"temperature must be between 0 and 2, got {temperature}", "temperature");
        double? topP = ReadDouble(obj, "top_p");
        if (topP is <= 0 or > 1)
            throw new LineRejection(LineErrorCode.InvalidParameter, $"top_p must be in (0, 1], got {topP}", "top_p");
        IReadOnlyList<CompletionPrompt> prompts = endpoint == BatchEndpoint.Completions ? PromptFields.Read(obj.GetProperty("prompt")) : [new(null, null)];
        return new BatchRequest
        {
            CustomId = customId, LineNumber = lineNumber, Endpoint = endpoint,
            Model = ReadString(obj, "model"),
            Prompt = prompts[0].Text, PromptIds = prompts[0].Ids, MorePrompts = prompts.Skip(1).ToList(),
            N = ChoiceFields.ReadN(obj, endpoint, prompts.Count), Logprobs = ChoiceFields.ReadLogprobs(obj, endpoint),
            Messages = endpoint == BatchEndpoint.ChatCompletions ? MessageFields.Read(obj.GetProperty("messages")) : [],
            MaxTokens = maxTokens, Temperature = temperature, TopP = topP,
            Seed = ReadSeed(obj), Stop = ReadStop(obj),
            ResponseFormat = ResponseFormat.Read(obj, endpoint),
        };
    }

    /// <summary>max_tokens, or max_completion_tokens (OpenAI's newer name for it); both only when they agree.</summary>
    private static int? ReadMaxTokens(JsonElement obj)
    {
        int? maxTokens = ReadMaxTokens(obj, "max_tokens"), maxCompletionTokens = ReadMaxTokens(obj, "max_completion_tokens");
        if (maxTokens is not null && maxCompletionTokens is not null && maxTokens != maxCompletionTokens)
        {
            throw new LineRejection(LineErrorCode.InvalidParameter,
                $"max_tokens ({maxTokens}) and max_completion_tokens ({maxCompletionTokens}) differ; they are two names of one limit", "max_completion_tokens");
        }
        return maxTokens ?? maxCompletionTokens;
    }

    private static int? ReadMaxTokens(JsonElement obj, string name)
    {
        if (!LineParser.TryGet(obj, name, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var n))
            throw new LineRejection(LineErrorCode.InvalidType, $"{name} must be an integer", name);
        if (n < 1 || n > int.MaxValue)
            throw new LineRejection(LineErrorCode.InvalidParameter, $"{name} must be at least 1, got {n}", name);
        return (int)n;
    }

    private static long? ReadSeed(JsonElement obj)
    {
        if (!LineParser.TryGet(obj, "seed", out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var seed))
            throw new LineRejection(LineErrorCode.InvalidType, "seed must be an integer", "seed");
        return seed;
    }

    private static double? ReadDouble(JsonElement obj, string name)
    {
        if (!LineParser.TryGet(obj, name, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number)
            throw new LineRejection(LineErrorCode.InvalidType, $"{name} must be a number", name);
        return value.GetDouble();
    }

    private static string? ReadString(JsonElement obj, string name)
    {
        if (!LineParser.TryGet(obj, name, out var value)) return null;
        if (value.ValueKind != JsonValueKind.String)
            throw new LineRejection(LineErrorCode.InvalidType, $"{name} must be a string", name);
        return value.GetString();
    }

    private static IReadOnlyList<string> ReadStop(JsonElement obj)
    {
        if (!LineParser.TryGet(obj, "stop", out var value)) return [];
        if (value.ValueKind == JsonValueKind.String) return [CheckStop(value.GetString()!)];
        if (value.ValueKind != JsonValueKind.Array)
            throw new LineRejection(LineErrorCode.InvalidType, "stop must be a string or an array of strings", "stop");
        var stops = new List<string>();
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                throw new LineRejection(LineErrorCode.InvalidType, "stop must be a string or an array of strings", "stop");
            stops.Add(CheckStop(item.GetString()!));
        }
        return stops;
    }

    private static string CheckStop(string stop) =>
        stop.Length > 0 ? stop : throw new LineRejection(LineErrorCode.InvalidParameter, "stop strings must not be empty", "stop");
}

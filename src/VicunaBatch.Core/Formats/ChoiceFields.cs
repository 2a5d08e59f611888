using System.Text.Json;

namespace VicunaBatch.Core.Formats;

/// <summary>
/// Reads what an OpenAI body asks of its choices: how many (<c>n</c>, and completions' <c>best_of</c>, which is
/// honoured only where it means the same as <c>n</c>) and their log probabilities (chat <c>logprobs</c> +
/// <c>top_logprobs</c>, completions <c>logprobs</c>), with OpenAI's ranges.
/// </summary>
internal static class ChoiceFields
{
    /// <summary>Most choices one line may ask for, over all its prompts: OpenAI's bound on <c>n</c>.</summary>
    public const int MaxChoices = 128;

    /// <summary>Most alternatives per token: chat's <c>top_logprobs</c> and completions' <c>logprobs</c> bounds.</summary>
    public const int MaxTopLogprobsChat = 20, MaxTopLogprobsCompletions = 5;

    public static int ReadN(JsonElement obj, BatchEndpoint endpoint, int numPrompts)
    {
        var n = ReadInt(obj, "n") ?? 1;
        if (n < 1 || n > MaxChoices)
            throw new LineRejection(LineErrorCode.InvalidParameter, $"n must be between 1 and {MaxChoices}, got {n}", "n");
        if (n * numPrompts > MaxChoices)
        {
            throw new LineRejection(LineErrorCode.InvalidParameter,
                $"n ({n}) × {numPrompts} prompts asks for {n * numPrompts} choices; a line may ask for at most {MaxChoices}", "n");
        }
        if (endpoint == BatchEndpoint.Completions && ReadInt(obj, "best_of") is { } bestOf && bestOf != n)
        {
            throw new LineRejection(LineErrorCode.UnsupportedParameter,
                $"best_of: {bestOf} is not supported: choosing the best {n} of {bestOf} completions is not done here; send best_of equal to n ({n}) or leave it out", "best_of");
        }
        return n;
    }

    /// <summary>Null when the body asks for no log probabilities, else the alternatives wanted per token.</summary>
    public static int? ReadLogprobs(JsonElement obj, BatchEndpoint endpoint) =>
        endpoint == BatchEndpoint.ChatCompletions ? ReadChatLogprobs(obj) : ReadCompletionsLogprobs(obj);

    private static int? ReadChatLogprobs(JsonElement obj)
    {
        bool wanted = false;
        if (LineParser.TryGet(obj, "logprobs", out var logprobs))
        {
            if (logprobs.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                throw new LineRejection(LineErrorCode.InvalidType, "logprobs must be a boolean", "logprobs");
            wanted = logprobs.ValueKind == JsonValueKind.True;
        }
        var top = ReadInt(obj, "top_logprobs");
        if (top is < 0 or > MaxTopLogprobsChat)
            throw new LineRejection(LineErrorCode.InvalidParameter, $"top_logprobs must be between 0 and {MaxTopLogprobsChat}, got {top}", "top_logprobs");
        if (top is not null && !wanted)
            throw new LineRejection(LineErrorCode.InvalidParameter, "top_logprobs needs logprobs: true", "top_logprobs");
        return wanted ? top ?? 0 : null;
    }

    private static int? ReadCompletionsLogprobs(JsonElement obj)
    {
        var top = ReadInt(obj, "logprobs");
        if (top is < 0 or > MaxTopLogprobsCompletions)
            throw new LineRejection(LineErrorCode.InvalidParameter, $"logprobs must be between 0 and {MaxTopLogprobsCompletions}, got {top}", "logprobs");
        return top;
    }

    private static int? ReadInt(JsonElement obj, string name)
    {
        if (!LineParser.TryGet(obj, name, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var n))
            throw new LineRejection(LineErrorCode.InvalidType, $"{name} must be an integer", name);
        return n;
    }
}

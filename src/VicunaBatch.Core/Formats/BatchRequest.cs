namespace VicunaBatch.Core.Formats;

/// <summary>Which OpenAI endpoint a request targets; decides the shape of its output body.</summary>
public enum BatchEndpoint
{
    /// <summary><c>/v1/chat/completions</c>: <see cref="BatchRequest.Messages"/> set.</summary>
    ChatCompletions,

    /// <summary><c>/v1/completions</c>: <see cref="BatchRequest.Prompt"/> set.</summary>
    Completions,
}

public static class BatchEndpoints
{
    public const string ChatCompletionsUrl = "/v1/chat/completions";
    public const string CompletionsUrl = "/v1/completions";

    public static string ToUrl(this BatchEndpoint endpoint) => endpoint switch
    {
        BatchEndpoint.ChatCompletions => ChatCompletionsUrl,
        BatchEndpoint.Completions => CompletionsUrl,
        _ => throw new ArgumentOutOfRangeException(nameof(endpoint), endpoint, "unknown endpoint"),
    };

    public static bool TryParseUrl(string? url, out BatchEndpoint endpoint)
    {
        endpoint = url switch { ChatCompletionsUrl => BatchEndpoint.ChatCompletions, _ => BatchEndpoint.Completions };
        return url is ChatCompletionsUrl or CompletionsUrl;
    }
}

/// <summary>One chat message. Role is one of <see cref="Roles"/>.</summary>
public sealed record ChatTurn(string Role, string Content)
{
    public static readonly IReadOnlySet<string> Roles = new HashSet<string>(StringComparer.Ordinal) { "system", "user", "assistant" };
}

/// <summary>
/// One parsed, validated input request. Exactly one of <see cref="Prompt"/> (completions) or a
/// non-empty <see cref="Messages"/> (chat) is set. Equality compares list contents.
/// </summary>
public sealed record BatchRequest
{
    public required string CustomId { get; init; }

    /// <summary>1-based physical line number in the input file.</summary>
    public required int LineNumber { get; init; }

    public required BatchEndpoint Endpoint { get; init; }
    public string? Model { get; init; }
    public string? Prompt { get; init; }
    public IReadOnlyList<ChatTurn> Messages { get; init; } = [];
    public int? MaxTokens { get; init; }
    public double? Temperature { get; init; }
    public double? TopP { get; init; }
    public long? Seed { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];

    /// <summary>The chat line's <c>response_format</c>; null when it has none (free text).</summary>
    public ResponseFormat? ResponseFormat { get; init; }

    public bool Equals(BatchRequest? other) =>
        other is not null
        && CustomId == other.CustomId && LineNumber == other.LineNumber && Endpoint == other.Endpoint
        && Model == other.Model && Prompt == other.Prompt && Messages.SequenceEqual(other.Messages)
        && MaxTokens == other.MaxTokens && Temperature == other.Temperature && TopP == other.TopP
        && Seed == other.Seed && Stop.SequenceEqual(other.Stop) && Equals(ResponseFormat, other.ResponseFormat);

    public override int GetHashCode() => HashCode.Combine(CustomId, LineNumber, Endpoint, Prompt, Messages.Count, MaxTokens);
}

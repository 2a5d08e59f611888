namespace VicunaBatch.Core.Formats;

/// <summary>Which OpenAI endpoint a request targets; decides the shape of its output body.</summary>
public enum BatchEndpoint
{
    /// <summary><c>/v1/chat/completions</c>: <see cref="BatchRequest.Messages"/> set.</summary>
    ChatCompletions,

    /// <summary><c>/v1/completions</c>: <see cref="BatchRequest.Prompt"/> or <see cref="BatchRequest.PromptIds"/> set.</summary>
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

/// <summary>One chat message: a role of <see cref="Roles"/> and its text (content parts already joined).</summary>
public sealed record ChatTurn(string Role, string Content)
{
    /// <summary>OpenAI's <c>developer</c> role is kept as written; the prompt rule reads it as <c>system</c>, as OpenAI
    /// does for models without a developer role.</summary>
    public const string DeveloperRole = "developer";

    public static readonly IReadOnlyList<string> Roles = ["system", DeveloperRole, "user", "assistant"];
}

/// <summary>
/// One parsed, validated input request. Exactly one of <see cref="Prompt"/> or <see cref="PromptIds"/> (completions)
/// or a non-empty <see cref="Messages"/> (chat) is set. Equality compares list contents.
/// </summary>
public sealed record BatchRequest
{
    public required string CustomId { get; init; }

    /// <summary>1-based physical line number in the input file.</summary>
    public required int LineNumber { get; init; }

    public required BatchEndpoint Endpoint { get; init; }
    public string? Model { get; init; }
    public string? Prompt { get; init; }

    /// <summary>A completions prompt given as token ids (non-empty, each at least 0): the engine's prompt as given.</summary>
    public IReadOnlyList<int>? PromptIds { get; init; }

    /// <summary>A completions request's prompts after the first (<see cref="Prompt"/> or <see cref="PromptIds"/>): OpenAI
    /// answers each prompt of an array with its own <see cref="N"/> choices, indexed across the prompts.</summary>
    public IReadOnlyList<CompletionPrompt> MorePrompts { get; init; } = [];

    public IReadOnlyList<ChatTurn> Messages { get; init; } = [];

    /// <summary>Choices per prompt (OpenAI's <c>n</c>), each sampled on its own.</summary>
    public int N { get; init; } = 1;

    /// <summary>Null: no log probabilities. Else each output token's log probability and this many most likely
    /// alternatives (chat <c>logprobs: true</c> with <c>top_logprobs</c>, completions <c>logprobs</c>).</summary>
    public int? Logprobs { get; init; }

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
        && CompletionPrompt.IdsEqual(PromptIds, other.PromptIds) && MorePrompts.SequenceEqual(other.MorePrompts)
        && N == other.N && Logprobs == other.Logprobs
        && MaxTokens == other.MaxTokens && Temperature == other.Temperature && TopP == other.TopP
        && Seed == other.Seed && Stop.SequenceEqual(other.Stop) && Equals(ResponseFormat, other.ResponseFormat);

    public override int GetHashCode() => HashCode.Combine(CustomId, LineNumber, Endpoint, Prompt, Messages.Count, MaxTokens);

    /// <summary>Every completions prompt of the request, first to last (none for chat).</summary>
    public IEnumerable<CompletionPrompt> CompletionPrompts() => Endpoint == BatchEndpoint.Completions
        ? MorePrompts.Prepend(new CompletionPrompt(Prompt, PromptIds))
        : [];

    /// <summary>This request with <paramref name="prompt"/> as its only prompt.</summary>
    public BatchRequest WithPrompt(CompletionPrompt prompt) => this with { Prompt = prompt.Text, PromptIds = prompt.Ids, MorePrompts = [] };
}

/// <summary>One completions prompt: its text, or its token ids (exactly one set). Equality compares the ids' contents.</summary>
public sealed record CompletionPrompt(string? Text, IReadOnlyList<int>? Ids)
{
    public bool Equals(CompletionPrompt? other) => other is not null && Text == other.Text && IdsEqual(Ids, other.Ids);

    public override int GetHashCode() => HashCode.Combine(Text, Ids?.Count);

    internal static bool IdsEqual(IReadOnlyList<int>? a, IReadOnlyList<int>? b) =>
        a is null ? b is null : b is not null && a.SequenceEqual(b);
}

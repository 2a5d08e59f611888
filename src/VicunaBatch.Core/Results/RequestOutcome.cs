using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Results;

public enum FinishReason
{
    Stop,
    Length,
}

/// <summary>Why one request failed (snake_case in errors.jsonl).</summary>
public enum RequestErrorCode
{
    /// <summary>The executor threw.</summary>
    ExecutionFailed,
    ContextLengthExceeded,
    /// <summary>A line that validated no longer parses (input changed under the job).</summary>
    InvalidRequest,
    /// <summary>The request's shard was dead-lettered before the request finished.</summary>
    ShardFailed,
    /// <summary>The job passed its completion window before the request ran.</summary>
    BatchExpired,
    /// <summary>The job was cancelled before the request ran.</summary>
    BatchCancelled,
}

/// <summary>
/// What happened to one request. Success: <see cref="Text"/>, <see cref="FinishReason"/> and token
/// counts set, <see cref="ErrorCode"/> null. Failure: <see cref="ErrorCode"/> and <see cref="ErrorMessage"/> set.
/// <see cref="CreatedAt"/> (Unix seconds) comes from execution time, so output files are reproducible.
/// </summary>
public sealed record RequestOutcome
{
    public required string CustomId { get; init; }
    public required int LineNumber { get; init; }
    public int ShardIndex { get; init; }
    public required BatchEndpoint Endpoint { get; init; }
    public required long CreatedAt { get; init; }
    public string? Model { get; init; }
    public string? Text { get; init; }
    public FinishReason? FinishReason { get; init; }
    public int PromptTokens { get; init; }
    public int CompletionTokens { get; init; }
    /// <summary>Every choice, when the request asked for more than one or for log probabilities; else null, and its
    /// one choice is <see cref="Text"/> and <see cref="FinishReason"/> (which repeat choice 0 when this is set).</summary>
    public IReadOnlyList<OutcomeChoice>? Choices { get; init; }

    public RequestErrorCode? ErrorCode { get; init; }
    public string? ErrorMessage { get; init; }

    [System.Text.Json.Serialization.JsonIgnore]
    public bool Succeeded => ErrorCode is null;

    public static RequestOutcome Success(
        BatchRequest request, string model, string text, FinishReason finishReason,
        int promptTokens, int completionTokens, DateTimeOffset createdAt) => new()
    {
        CustomId = request.CustomId, LineNumber = request.LineNumber, Endpoint = request.Endpoint,
        CreatedAt = createdAt.ToUnixTimeSeconds(), Model = model, Text = text, FinishReason = finishReason,
        PromptTokens = promptTokens, CompletionTokens = completionTokens,
    };

    public static RequestOutcome Failure(BatchRequest request, RequestErrorCode code, string message, DateTimeOffset createdAt) => new()
    {
        CustomId = request.CustomId, LineNumber = request.LineNumber, Endpoint = request.Endpoint,
        CreatedAt = createdAt.ToUnixTimeSeconds(), ErrorCode = code, ErrorMessage = message,
    };
}

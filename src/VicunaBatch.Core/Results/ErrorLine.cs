using System.Text.Json.Serialization;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Results;

/// <summary>What an errors.jsonl line reports, which decides its shape (<see cref="OutputLines.FormatError"/>).</summary>
public enum ErrorLineKind
{
    /// <summary>An input line refused at validation: never a request. A response shape with status 400 whose error
    /// carries the input <c>line</c> (OpenAI refuses the whole file instead; its batch errors carry <c>line</c>).</summary>
    Rejected,
    /// <summary>A request that ran and failed: a response shape with its status code and OpenAI's error body.</summary>
    Failed,
    /// <summary>A request that never ran (<c>batch_expired</c>, <c>batch_cancelled</c>): <c>response</c> null and the
    /// top-level <c>error</c> set, as OpenAI writes them.</summary>
    NotRun,
}

/// <summary>
/// One line of errors.jsonl. Stored as <c>{custom_id, code, message, line, param}</c> in a job's
/// validation_errors.jsonl (only rejected lines are stored there, so <see cref="Kind"/> and <see cref="StatusCode"/>
/// are not: a stored line reads back as <see cref="ErrorLineKind.Rejected"/> with 400).
/// </summary>
public sealed record ErrorLine(string CustomId, string Code, string Message, int Line)
{
    /// <summary>The request field the error is about (OpenAI's <c>param</c>), when one is known.</summary>
    public string? Param { get; init; }

    [JsonIgnore]
    public ErrorLineKind Kind { get; init; } = ErrorLineKind.Rejected;

    /// <summary>The HTTP status OpenAI answers this failure with (not written for <see cref="ErrorLineKind.NotRun"/>).</summary>
    [JsonIgnore]
    public int StatusCode { get; init; } = 400;

    /// <summary>OpenAI's error <c>type</c> for <see cref="StatusCode"/>.</summary>
    [JsonIgnore]
    public string Type => StatusCode >= 500 ? "server_error" : "invalid_request_error";

    public static ErrorLine From(LineError error) =>
        new(error.CustomId, error.Code.SnakeCase(), error.Message, error.LineNumber) { Param = error.Param };

    public static ErrorLine From(RequestOutcome outcome) =>
        ForRequest(outcome.CustomId, outcome.LineNumber, outcome.Endpoint, outcome.ErrorCode!.Value, outcome.ErrorMessage ?? "");

    /// <summary>The line of a request that failed or never ran.</summary>
    public static ErrorLine ForRequest(string customId, int line, BatchEndpoint endpoint, RequestErrorCode code, string message) =>
        new(customId, code.SnakeCase(), message, line)
        {
            Kind = code is RequestErrorCode.BatchExpired or RequestErrorCode.BatchCancelled ? ErrorLineKind.NotRun : ErrorLineKind.Failed,
            StatusCode = code is RequestErrorCode.ContextLengthExceeded or RequestErrorCode.InvalidRequest ? 400 : 500,
            Param = code == RequestErrorCode.ContextLengthExceeded ? (endpoint == BatchEndpoint.ChatCompletions ? "messages" : "prompt") : null,
        };
}

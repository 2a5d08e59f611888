namespace VicunaBatch.Core.Formats;

/// <summary>Why an input line was rejected. Serialised snake_case (<c>invalid_json</c>, …).</summary>
public enum LineErrorCode
{
    InvalidJson,
    InvalidEncoding,
    NotAnObject,
    MissingBody,
    MissingPrompt,
    AmbiguousPrompt,
    UnknownEndpoint,
    InvalidMethod,
    InvalidType,
    InvalidParameter,
    InvalidMessages,
    UnknownField,
    /// <summary>An OpenAI parameter or value this server does not honour (<c>n</c> &gt; 1, tools, an image part, a JSON
    /// Schema keyword outside the subset <c>response_format</c> enforces…):
    /// refused rather than ignored, so no answer means other than what its sender meant (<see cref="RequestParameters"/>).</summary>
    UnsupportedParameter,
    InvalidCustomId,
    DuplicateCustomId,
    /// <summary>Longer than <see cref="InputOptions.MaxLineBytes"/>: read past, never parsed.</summary>
    LineTooLong,
}

/// <summary>
/// A rejected input line. <see cref="CustomId"/> is the id the line would have had; <see cref="Param"/> names the field
/// at fault as OpenAI's errors do (<c>n</c>, <c>messages[0].content[1].type</c>); when the parser names none, the field
/// the code alone points at (<c>custom_id</c>, <c>url</c>, ...), else null.
/// </summary>
public sealed record LineError(int LineNumber, string CustomId, LineErrorCode Code, string Message, string? Param = null)
{
    public string? Param { get; init; } = Param ?? Code switch
    {
        LineErrorCode.InvalidCustomId or LineErrorCode.DuplicateCustomId => "custom_id",
        LineErrorCode.InvalidMethod => "method",
        LineErrorCode.UnknownEndpoint => "url",
        LineErrorCode.MissingBody => "body",
        LineErrorCode.InvalidMessages => "messages",
        _ => null,
    };
}

/// <summary>Result of parsing one non-blank line: exactly one of the two is set.</summary>
public sealed record ParsedLine(BatchRequest? Request, LineError? Error)
{
    public int LineNumber => Request?.LineNumber ?? Error!.LineNumber;
    public string CustomId => Request?.CustomId ?? Error!.CustomId;

    /// <summary>The model a refused line names where its request would (<c>body.model</c>), read when its JSON object
    /// could be; null otherwise. A batch that fails validation names it, as OpenAI's does.</summary>
    public string? RefusedModel { get; init; }

    /// <summary>The model the line names: its request's, or the one a refused line names; null when none.</summary>
    public string? Model => Request?.Model ?? RefusedModel;
}

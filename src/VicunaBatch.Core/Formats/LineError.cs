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
    InvalidCustomId,
    DuplicateCustomId,
    /// <summary>A parameter or value the engine does not support (a JSON Schema keyword outside the subset it enforces).</summary>
    UnsupportedParameter,
    /// <summary>Longer than <see cref="InputOptions.MaxLineBytes"/>: read past, never parsed.</summary>
    LineTooLong,
}

/// <summary>A rejected input line. <see cref="CustomId"/> is the id the line would have had.</summary>
public sealed record LineError(int LineNumber, string CustomId, LineErrorCode Code, string Message);

/// <summary>Result of parsing one non-blank line: exactly one of the two is set.</summary>
public sealed record ParsedLine(BatchRequest? Request, LineError? Error)
{
    public int LineNumber => Request?.LineNumber ?? Error!.LineNumber;
    public string CustomId => Request?.CustomId ?? Error!.CustomId;
}

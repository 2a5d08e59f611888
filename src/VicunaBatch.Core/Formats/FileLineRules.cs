namespace VicunaBatch.Core.Formats;

/// <summary>
/// What a parsed line must meet beyond itself, across its file: a <c>custom_id</c> used once, and, in a batch with one
/// endpoint (an API batch), that endpoint. One home for the submit's <see cref="InputValidator"/> and the API's dry run.
/// </summary>
internal sealed class FileLineRules(BatchEndpoint? expectedEndpoint)
{
    private readonly HashSet<string> _seenIds = new(StringComparer.Ordinal);

    /// <summary>The line's error: its parse error, else the first file rule it breaks, else null.</summary>
    public LineError? Check(ParsedLine parsed)
    {
        if (parsed.Error is { } error) return error;
        if (!_seenIds.Add(parsed.CustomId))
            return new LineError(parsed.LineNumber, parsed.CustomId, LineErrorCode.DuplicateCustomId,
                $"custom_id \"{parsed.CustomId}\" already used on an earlier line");
        if (expectedEndpoint is { } expected && parsed.Request!.Endpoint != expected)
            return new LineError(parsed.LineNumber, parsed.CustomId, LineErrorCode.UnknownEndpoint,
                $"line targets {parsed.Request.Endpoint.ToUrl()} but the batch endpoint is {expected.ToUrl()}");
        return null;
    }
}

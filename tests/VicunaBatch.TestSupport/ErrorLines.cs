using System.Text.Json;

namespace VicunaBatch.Testing;

/// <summary>Reads errors.jsonl lines, which have OpenAI's batch output shape.</summary>
public static class ErrorLines
{
    /// <summary>
    /// The error object of an errors.jsonl line: <c>response.body.error</c> of a failed request or rejected line
    /// (<c>{message, type, param, code}</c>, and <c>line</c> for a rejected line), else the top-level <c>error</c> of a
    /// request that never ran (<c>{code, message}</c>).
    /// </summary>
    public static JsonElement ErrorOf(JsonElement line) =>
        line.GetProperty("response") is { ValueKind: JsonValueKind.Object } response
            ? response.GetProperty("body").GetProperty("error")
            : line.GetProperty("error");

    public static JsonElement ErrorOf(string line) => ErrorOf(JsonDocument.Parse(line).RootElement);

    /// <summary>The error's <c>code</c>.</summary>
    public static string CodeOf(JsonElement line) => ErrorOf(line).GetProperty("code").GetString()!;
}

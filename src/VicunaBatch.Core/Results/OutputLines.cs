using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Results;

/// <summary>
/// Formats output.jsonl / errors.jsonl lines (no trailing newline) in the shape of OpenAI's batch request output:
/// <c>{"id": "batch_req_…", "custom_id", "response": {"status_code", "request_id", "body"} | null, "error": {"code",
/// "message"} | null}</c>. A success's body is a whole <c>chat.completion</c> or <c>text_completion</c> object; a
/// failure's body is OpenAI's <c>{"error": {"message", "type", "param", "code"}}</c>. Ids are derived from job id and
/// custom_id (a rejected line's from its line number), and <c>created</c> from the outcome, so re-finalizing writes
/// byte-identical files.
/// </summary>
public static class OutputLines
{
    /// <summary>OpenAI's <c>service_tier</c> for standard processing, the only kind there is here.</summary>
    public const string ServiceTier = "default";

    public static string FormatOutput(string jobId, RequestOutcome outcome)
    {
        if (!outcome.Succeeded) throw new ArgumentException($"outcome of {outcome.CustomId} is a failure", nameof(outcome));
        return Write(writer =>
        {
            WriteResponseStart(writer, jobId, outcome.CustomId, outcome.CustomId, 200);
            OutputBodies.Write(writer, DerivedId(jobId, outcome.CustomId, "completion"), outcome);
            WriteResponseEnd(writer);
        });
    }

    /// <summary>An errors.jsonl line: the response shape of a failed request or rejected line, or the top-level
    /// <c>error</c> of a request that never ran.</summary>
    public static string FormatError(string jobId, ErrorLine error) => Write(writer =>
    {
        if (error.Kind == ErrorLineKind.NotRun)
        {
            writer.WriteStartObject();
            writer.WriteString("id", "batch_req_" + DerivedId(jobId, error.CustomId, "batch_req"));
            writer.WriteString("custom_id", error.CustomId);
            writer.WriteNull("response");
            writer.WriteStartObject("error");
            writer.WriteString("code", error.Code);
            writer.WriteString("message", error.Message);
            writer.WriteEndObject();
            writer.WriteEndObject();
            return;
        }
        // a rejected line is no request, and its custom_id may be another line's (a duplicate): ids by line number
        var key = error.Kind == ErrorLineKind.Rejected ? RejectedLineKey(error.Line) : error.CustomId;
        WriteResponseStart(writer, jobId, key, error.CustomId, error.StatusCode);
        writer.WriteStartObject();
        writer.WriteStartObject("error");
        writer.WriteString("message", error.Message);
        writer.WriteString("type", error.Type);
        if (error.Param is null) writer.WriteNull("param");
        else writer.WriteString("param", error.Param);
        writer.WriteString("code", error.Code);
        if (error.Kind == ErrorLineKind.Rejected) writer.WriteNumber("line", error.Line);
        writer.WriteEndObject();
        writer.WriteEndObject();
        WriteResponseEnd(writer);
    });

    /// <summary>24 lowercase hex digits of SHA-256(jobId, customId, purpose).</summary>
    public static string DerivedId(string jobId, string customId, string purpose)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{jobId}\0{customId}\0{purpose}"));
        return Convert.ToHexStringLower(hash)[..24];
    }

    /// <summary>What a rejected line's ids are derived from in place of a custom_id (a NUL no custom_id holds).</summary>
    public static string RejectedLineKey(int line) => $"\0line {line}";

    /// <summary><c>{"id", "custom_id", "response": {"status_code", "request_id", "body":</c> — the body comes next.</summary>
    private static void WriteResponseStart(Utf8JsonWriter writer, string jobId, string idKey, string customId, int statusCode)
    {
        writer.WriteStartObject();
        writer.WriteString("id", "batch_req_" + DerivedId(jobId, idKey, "batch_req"));
        writer.WriteString("custom_id", customId);
        writer.WriteStartObject("response");
        writer.WriteNumber("status_code", statusCode);
        writer.WriteString("request_id", "req_" + DerivedId(jobId, idKey, "request"));
        writer.WritePropertyName("body");
    }

    private static void WriteResponseEnd(Utf8JsonWriter writer)
    {
        writer.WriteEndObject();
        writer.WriteNull("error");
        writer.WriteEndObject();
    }

    private static string Write(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, JsonDefaults.WriterOptions)) write(writer);
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }
}

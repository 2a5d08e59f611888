using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Results;

/// <summary>One line of errors.jsonl: a rejected input line or a failed request. <see cref="Param"/>: the field at fault, when one is.</summary>
public sealed record ErrorLine(string CustomId, string Code, string Message, int Line, string? Param = null)
{
    public static ErrorLine From(LineError error) => new(error.CustomId, error.Code.SnakeCase(), error.Message, error.LineNumber, error.Param);

    public static ErrorLine From(RequestOutcome outcome) =>
        new(outcome.CustomId, outcome.ErrorCode!.Value.SnakeCase(), outcome.ErrorMessage ?? "", outcome.LineNumber);
}

/// <summary>
/// Formats output.jsonl / errors.jsonl lines (no trailing newline). Ids are derived from job id and
/// custom_id, and <c>created</c> from the outcome, so re-finalizing writes byte-identical files.
/// </summary>
public static class OutputLines
{
    public static string FormatOutput(string jobId, RequestOutcome outcome)
    {
        if (!outcome.Succeeded) throw new ArgumentException($"outcome of {outcome.CustomId} is a failure", nameof(outcome));
        return Write(writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("id", "batch_req_" + DerivedId(jobId, outcome.CustomId, "batch_req"));
            writer.WriteString("custom_id", outcome.CustomId);
            writer.WriteStartObject("response");
            writer.WriteNumber("status_code", 200);
            writer.WriteString("request_id", "req_" + DerivedId(jobId, outcome.CustomId, "request"));
            writer.WritePropertyName("body");
            WriteBody(writer, jobId, outcome);
            writer.WriteEndObject();
            writer.WriteNull("error");
            writer.WriteEndObject();
        });
    }

    public static string FormatError(ErrorLine error) => Write(writer =>
    {
        writer.WriteStartObject();
        writer.WriteString("custom_id", error.CustomId);
        writer.WriteStartObject("error");
        writer.WriteString("code", error.Code);
        writer.WriteString("message", error.Message);
        writer.WriteNumber("line", error.Line);
        if (error.Param is not null) writer.WriteString("param", error.Param);
        writer.WriteEndObject();
        writer.WriteEndObject();
    });

    /// <summary>24 lowercase hex digits of SHA-256(jobId, customId, purpose).</summary>
    public static string DerivedId(string jobId, string customId, string purpose)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{jobId}\0{customId}\0{purpose}"));
        return Convert.ToHexStringLower(hash)[..24];
    }

    private static void WriteBody(Utf8JsonWriter writer, string jobId, RequestOutcome outcome)
    {
        bool chat = outcome.Endpoint == BatchEndpoint.ChatCompletions;
        writer.WriteStartObject();
        writer.WriteString("id", (chat ? "chatcmpl-" : "cmpl-") + DerivedId(jobId, outcome.CustomId, "completion"));
        writer.WriteString("object", chat ? "chat.completion" : "text_completion");
        writer.WriteNumber("created", outcome.CreatedAt);
        writer.WriteString("model", outcome.Model ?? "");
        writer.WriteStartArray("choices");
        var choices = outcome.Choices ?? [new OutcomeChoice(outcome.Text ?? "", outcome.FinishReason ?? FinishReason.Stop)];
        for (var i = 0; i < choices.Count; i++) WriteChoice(writer, i, choices[i], chat);
        writer.WriteEndArray();
        writer.WriteStartObject("usage");
        writer.WriteNumber("prompt_tokens", outcome.PromptTokens);
        writer.WriteNumber("completion_tokens", outcome.CompletionTokens);
        writer.WriteNumber("total_tokens", outcome.PromptTokens + outcome.CompletionTokens);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private static void WriteChoice(Utf8JsonWriter writer, int index, OutcomeChoice choice, bool chat)
    {
        writer.WriteStartObject();
        writer.WriteNumber("index", index);
        if (chat)
        {
            writer.WriteStartObject("message");
            writer.WriteString("role", "assistant");
            writer.WriteString("content", choice.Text);
            writer.WriteEndObject();
        }
        else
        {
            writer.WriteString("text", choice.Text);
        }
        if (choice.Logprobs is { } logprobs)
        {
            writer.WritePropertyName("logprobs");
            if (chat) LogprobLines.WriteChat(writer, logprobs);
            else LogprobLines.WriteCompletions(writer, logprobs);
        }
        writer.WriteString("finish_reason", choice.FinishReason.SnakeCase());
        writer.WriteEndObject();
    }

    private static string Write(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, JsonDefaults.WriterOptions)) write(writer);
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }
}

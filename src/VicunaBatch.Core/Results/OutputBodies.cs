using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Results;

/// <summary>
/// The <c>body</c> of a success line: OpenAI's chat completion object (<c>chat.completion</c>) or completion object
/// (<c>text_completion</c>), every key of the API reference's examples in their order, so code typed against the
/// official SDKs finds what their types promise: one choice per <see cref="RequestOutcome.Choices"/> (<c>n</c>), each
/// with its <c>logprobs</c> when asked (<see cref="LogprobLines"/>). What this engine has no notion of is empty, not
/// missing: <c>logprobs</c> not asked and <c>refusal</c> are null, <c>annotations</c> is [], the token details are 0.
/// </summary>
internal static class OutputBodies
{
    public static void Write(Utf8JsonWriter writer, string bodyId, RequestOutcome outcome)
    {
        bool chat = outcome.Endpoint == BatchEndpoint.ChatCompletions;
        var model = outcome.Model ?? "";
        writer.WriteStartObject();
        writer.WriteString("id", (chat ? "chatcmpl-" : "cmpl-") + bodyId);
        writer.WriteString("object", chat ? "chat.completion" : "text_completion");
        writer.WriteNumber("created", outcome.CreatedAt);
        writer.WriteString("model", model);
        if (!chat) writer.WriteString("system_fingerprint", SystemFingerprint(model));
        writer.WriteStartArray("choices");
        var choices = outcome.Choices ?? [new OutcomeChoice(outcome.Text ?? "", outcome.FinishReason ?? FinishReason.Stop)];
        for (var i = 0; i < choices.Count; i++)
        {
            if (chat) WriteChatChoice(writer, i, choices[i]);
            else WriteTextChoice(writer, i, choices[i]);
        }
        writer.WriteEndArray();
        WriteUsage(writer, outcome);
        if (chat)
        {
            writer.WriteString("service_tier", OutputLines.ServiceTier);
            writer.WriteString("system_fingerprint", SystemFingerprint(model));
        }
        writer.WriteEndObject();
    }

    /// <summary>Each model's fingerprint, hashed once per name: outcomes carry the served models' names, a handful.</summary>
    private static readonly ConcurrentDictionary<string, string> Fingerprints = new(StringComparer.Ordinal);

    /// <summary>
    /// <c>fp_</c> and 10 hex digits of a hash of the model's name: what OpenAI's <c>system_fingerprint</c> is for
    /// (telling when the backend changed, with <c>seed</c>), as far as the name tells it. Hashed once per model, not per line.
    /// </summary>
    public static string SystemFingerprint(string model) => Fingerprints.GetOrAdd(model, static name =>
        "fp_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("system_fingerprint\0" + name)))[..10]);

    private static void WriteChatChoice(Utf8JsonWriter writer, int index, OutcomeChoice choice)
    {
        writer.WriteStartObject();
        writer.WriteNumber("index", index);
        writer.WriteStartObject("message");
        writer.WriteString("role", "assistant");
        writer.WriteString("content", choice.Text);
        writer.WriteNull("refusal");
        writer.WriteStartArray("annotations");
        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.WritePropertyName("logprobs");
        if (choice.Logprobs is { } logprobs) LogprobLines.WriteChat(writer, logprobs);
        else writer.WriteNullValue();
        writer.WriteString("finish_reason", choice.FinishReason.SnakeCase());
        writer.WriteEndObject();
    }

    private static void WriteTextChoice(Utf8JsonWriter writer, int index, OutcomeChoice choice)
    {
        writer.WriteStartObject();
        writer.WriteString("text", choice.Text);
        writer.WriteNumber("index", index);
        writer.WritePropertyName("logprobs");
        if (choice.Logprobs is { } logprobs) LogprobLines.WriteCompletions(writer, logprobs);
        else writer.WriteNullValue();
        writer.WriteString("finish_reason", choice.FinishReason.SnakeCase());
        writer.WriteEndObject();
    }

    /// <summary>OpenAI's <c>CompletionUsage</c> with both detail objects and the fields its reference fills.</summary>
    private static void WriteUsage(Utf8JsonWriter writer, RequestOutcome outcome)
    {
        writer.WriteStartObject("usage");
        writer.WriteNumber("prompt_tokens", outcome.PromptTokens);
        writer.WriteNumber("completion_tokens", outcome.CompletionTokens);
        writer.WriteNumber("total_tokens", outcome.PromptTokens + outcome.CompletionTokens);
        writer.WriteStartObject("prompt_tokens_details");
        writer.WriteNumber("cached_tokens", 0);
        writer.WriteNumber("audio_tokens", 0);
        writer.WriteEndObject();
        writer.WriteStartObject("completion_tokens_details");
        writer.WriteNumber("reasoning_tokens", 0);
        writer.WriteNumber("audio_tokens", 0);
        writer.WriteNumber("accepted_prediction_tokens", 0);
        writer.WriteNumber("rejected_prediction_tokens", 0);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }
}

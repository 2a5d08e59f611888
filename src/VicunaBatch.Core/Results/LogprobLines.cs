using System.Text.Json;

namespace VicunaBatch.Core.Results;

/// <summary>A choice's <c>logprobs</c> object in each of OpenAI's two shapes.</summary>
internal static class LogprobLines
{
    /// <summary>Chat: <c>{"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}], "refusal": null}</c>.</summary>
    public static void WriteChat(Utf8JsonWriter writer, IReadOnlyList<TokenLogprob> logprobs)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("content");
        foreach (var token in logprobs)
        {
            writer.WriteStartObject();
            WriteToken(writer, token.Token, token.Logprob, token.Bytes);
            writer.WriteStartArray("top_logprobs");
            foreach (var top in token.Top)
            {
                writer.WriteStartObject();
                WriteToken(writer, top.Token, top.Logprob, top.Bytes);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteNull("refusal");
        writer.WriteEndObject();
    }

    /// <summary>
    /// Completions: <c>{"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"}</c>, offsets
    /// into the choice's text (no prompt is echoed before it).
    /// </summary>
    public static void WriteCompletions(Utf8JsonWriter writer, IReadOnlyList<TokenLogprob> logprobs)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("tokens");
        foreach (var token in logprobs) writer.WriteStringValue(token.Token);
        writer.WriteEndArray();
        writer.WriteStartArray("token_logprobs");
        foreach (var token in logprobs) writer.WriteNumberValue(token.Logprob);
        writer.WriteEndArray();
        writer.WriteStartArray("top_logprobs");
        foreach (var token in logprobs)
        {
            writer.WriteStartObject();
            // a JSON object keeps one entry per text: two tokens of one text keep the likelier (listed first)
            foreach (var top in token.Top.DistinctBy(t => t.Token)) writer.WriteNumber(top.Token, top.Logprob);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteStartArray("text_offset");
        foreach (var token in logprobs) writer.WriteNumberValue(token.TextOffset);
        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void WriteToken(Utf8JsonWriter writer, string token, double logprob, IReadOnlyList<int> bytes)
    {
        writer.WriteString("token", token);
        writer.WriteNumber("logprob", logprob);
        writer.WriteStartArray("bytes");
        foreach (var b in bytes) writer.WriteNumberValue(b);
        writer.WriteEndArray();
    }
}

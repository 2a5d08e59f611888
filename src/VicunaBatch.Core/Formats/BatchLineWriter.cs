using System.Text;
using System.Text.Json;

namespace VicunaBatch.Core.Formats;

/// <summary>Writes a <see cref="BatchRequest"/> as an OpenAI Batch input line (no trailing newline).</summary>
public static class BatchLineWriter
{
    public static string ToOpenAiLine(BatchRequest request)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, JsonDefaults.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("custom_id", request.CustomId);
            writer.WriteString("method", "POST");
            writer.WriteString("url", request.Endpoint.ToUrl());
            writer.WriteStartObject("body");
            WriteBody(writer, request);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private static void WriteBody(Utf8JsonWriter writer, BatchRequest request)
    {
        if (request.Model is not null) writer.WriteString("model", request.Model);
        if (request.Endpoint == BatchEndpoint.ChatCompletions)
        {
            writer.WriteStartArray("messages");
            foreach (var turn in request.Messages)
            {
                writer.WriteStartObject();
                writer.WriteString("role", turn.Role);
                writer.WriteString("content", turn.Content);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        else
        {
            WritePrompts(writer, request.CompletionPrompts().ToList());
        }
        if (request.N != 1) writer.WriteNumber("n", request.N);
        if (request.Logprobs is { } logprobs) WriteLogprobs(writer, request.Endpoint, logprobs);
        if (request.MaxTokens is { } maxTokens) writer.WriteNumber("max_tokens", maxTokens);
        if (request.Temperature is { } temperature) writer.WriteNumber("temperature", temperature);
        if (request.TopP is { } topP) writer.WriteNumber("top_p", topP);
        if (request.Seed is { } seed) writer.WriteNumber("seed", seed);
        if (request.Stop.Count > 0)
        {
            writer.WriteStartArray("stop");
            foreach (var stop in request.Stop) writer.WriteStringValue(stop);
            writer.WriteEndArray();
        }
    }

    /// <summary>One text prompt as a string, else as OpenAI's arrays: of ids, of strings, of id arrays.</summary>
    private static void WritePrompts(Utf8JsonWriter writer, List<CompletionPrompt> prompts)
    {
        if (prompts is [{ Text: { } text }])
        {
            writer.WriteString("prompt", text);
            return;
        }
        writer.WriteStartArray("prompt");
        if (prompts is [{ Ids: { } ids }]) WriteIds(writer, ids);
        foreach (var prompt in prompts.Count > 1 ? prompts : [])
        {
            if (prompt.Text is { } one) writer.WriteStringValue(one);
            else
            {
                writer.WriteStartArray();
                WriteIds(writer, prompt.Ids!);
                writer.WriteEndArray();
            }
        }
        writer.WriteEndArray();
    }

    private static void WriteIds(Utf8JsonWriter writer, IReadOnlyList<int> ids)
    {
        foreach (var id in ids) writer.WriteNumberValue(id);
    }

    private static void WriteLogprobs(Utf8JsonWriter writer, BatchEndpoint endpoint, int logprobs)
    {
        if (endpoint == BatchEndpoint.Completions)
        {
            writer.WriteNumber("logprobs", logprobs);
            return;
        }
        writer.WriteBoolean("logprobs", true);
        writer.WriteNumber("top_logprobs", logprobs);
    }
}

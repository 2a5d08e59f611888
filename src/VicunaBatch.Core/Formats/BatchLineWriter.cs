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
            writer.WriteString("prompt", request.Prompt);
        }
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
}

using System.Text.Json;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Results;

/// <summary>
/// The line format of every checkpoint store: one outcome as compact JSON and a newline, appended; a reader skips a
/// blank, torn or corrupt line (a process killed mid-write leaves one at the end) rather than failing the shard.
/// </summary>
public static class CheckpointLines
{
    public static byte[] Format(RequestOutcome outcome)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(outcome, ResultsJson.Options);
        var line = new byte[json.Length + 1];
        json.CopyTo(line, 0);
        line[^1] = (byte)'\n';
        return line;
    }

    /// <summary>The outcome of a complete line, or null for a blank, torn or corrupt one.</summary>
    public static RequestOutcome? TryParse(InputLine line)
    {
        if (line.IsBlank) return null;
        try { return JsonSerializer.Deserialize<RequestOutcome>(line.Content, ResultsJson.Options); }
        catch (JsonException) { return null; }
    }
}

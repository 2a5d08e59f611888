using System.Globalization;
using System.Text.Json;
using VicunaBatch.Core.Files;

namespace VicunaBatch.Api;

/// <summary>
/// OpenAI's expiration policy, <c>{"anchor": "created_at", "seconds": N}</c>: <c>expires_after</c> of an upload (multipart
/// fields <c>expires_after[anchor]</c> and <c>expires_after[seconds]</c>, as the SDKs send it) and
/// <c>output_expires_after</c> of a batch create (JSON). The seconds, null when absent, or the problem and its param.
/// </summary>
internal static class ExpiresAfterParam
{
    public static (long? Seconds, string? Error, string? Param) FromForm(IReadOnlyDictionary<string, string> fields, string name)
    {
        bool hasAnchor = fields.TryGetValue($"{name}[anchor]", out var anchor), hasSeconds = fields.TryGetValue($"{name}[seconds]", out var seconds);
        if (!hasAnchor && !hasSeconds) return (null, null, null);
        if (!hasSeconds) return Check(name, anchor, null);
        return long.TryParse(seconds, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
            ? Check(name, anchor, value)
            : (null, $"Invalid type for '{name}.seconds': expected an integer, but got '{BatchCreateBody.Abbreviate(seconds!)}' instead.", $"{name}.seconds");
    }

    public static (long? Seconds, string? Error, string? Param) FromJson(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var policy) || policy.ValueKind == JsonValueKind.Null) return (null, null, null);
        if (policy.ValueKind != JsonValueKind.Object)
            return (null, $"Invalid type for '{name}': expected an object {{\"anchor\": \"created_at\", \"seconds\": N}}, but got {Kind(policy)} instead.", name);
        string? anchor = null;
        if (policy.TryGetProperty("anchor", out var a))
        {
            if (a.ValueKind != JsonValueKind.String) return (null, $"Invalid type for '{name}.anchor': expected a string, but got {Kind(a)} instead.", $"{name}.anchor");
            anchor = a.GetString();
        }
        if (!policy.TryGetProperty("seconds", out var s)) return Check(name, anchor, null);
        return s.ValueKind == JsonValueKind.Number && s.TryGetInt64(out var seconds)
            ? Check(name, anchor, seconds)
            : (null, $"Invalid type for '{name}.seconds': expected an integer, but got {Kind(s)} instead.", $"{name}.seconds");
    }

    private static (long?, string?, string?) Check(string name, string? anchor, long? seconds)
    {
        if (anchor is null) return (null, $"Missing required parameter: '{name}.anchor'.", $"{name}.anchor");
        if (anchor != FileExpiry.CreatedAtAnchor)
            return (null, $"Invalid value for '{name}.anchor': '{BatchCreateBody.Abbreviate(anchor)}'. Supported values are: '{FileExpiry.CreatedAtAnchor}'.", $"{name}.anchor");
        if (seconds is not { } value) return (null, $"Missing required parameter: '{name}.seconds'.", $"{name}.seconds");
        if (value < FileExpiry.MinSeconds)
            return (null, $"Invalid '{name}.seconds': integer below minimum value. Expected a value >= {FileExpiry.MinSeconds} (1 hour), but got {value} instead.", $"{name}.seconds");
        if (value > FileExpiry.MaxSeconds)
            return (null, $"Invalid '{name}.seconds': integer above maximum value. Expected a value <= {FileExpiry.MaxSeconds} (30 days), but got {value} instead.", $"{name}.seconds");
        return (value, null, null);
    }

    private static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Number => "a number",
        JsonValueKind.String => "a string",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        JsonValueKind.Null => "null",
        _ => "a boolean",
    };
}

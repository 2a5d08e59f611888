namespace VicunaBatch.Core.Jobs;

/// <summary>
/// OpenAI's limits on a batch's <c>metadata</c>: at most <see cref="MaxPairs"/> pairs, keys of at most
/// <see cref="MaxKeyLength"/> characters, values of at most <see cref="MaxValueLength"/>, strings only. A character is a
/// Unicode code point (as Python's <c>len</c> counts), so an emoji is one. Checked by the API at create (serve and the
/// Function App), by <c>TenantBatches</c> before it writes anything, and by <c>vicuna-batch submit</c> before it uploads.
/// </summary>
public static class MetadataLimits
{
    public const int MaxPairs = 16;
    public const int MaxKeyLength = 64;
    public const int MaxValueLength = 512;

    /// <summary>The first limit <paramref name="metadata"/> breaks, as one sentence (the API's message and the CLI's), or null.</summary>
    public static string? Check(IReadOnlyCollection<KeyValuePair<string, string>> metadata)
    {
        if (metadata.Count > MaxPairs) return $"'metadata' may have at most {MaxPairs} pairs; it has {metadata.Count}.";
        foreach (var (key, value) in metadata)
        {
            if (Length(key) is var keyLength and > MaxKeyLength)
                return $"metadata key '{Abbreviate(key)}' is {keyLength} characters long; keys may be at most {MaxKeyLength} characters.";
            if (Length(value) is var valueLength and > MaxValueLength)
                return $"metadata value of '{Abbreviate(key)}' is {valueLength} characters long; values may be at most {MaxValueLength} characters.";
        }
        return null;
    }

    private static int Length(string text) => text.EnumerateRunes().Count();

    private static string Abbreviate(string key) => key.Length <= 20 ? key : key[..20] + "...";
}

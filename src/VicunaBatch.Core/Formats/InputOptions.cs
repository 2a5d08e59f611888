namespace VicunaBatch.Core.Formats;

/// <summary>How input files are read.</summary>
public enum InputFormat
{
    /// <summary>JSON lines; each line is detected on its own: OpenAI Batch when it has
    /// <c>body</c>, <c>url</c> or <c>method</c>, otherwise the simple format.</summary>
    Jsonl,

    /// <summary>One prompt per line (completions endpoint).</summary>
    Text,
}

/// <summary>Options of input parsing, validation and sharding.</summary>
public sealed class InputOptions
{
    /// <summary>Valid requests per shard (one queue message). Default 64.</summary>
    public int RequestsPerShard { get; init; } = 64;

    /// <summary>Longest accepted custom_id, in characters. Default 256.</summary>
    public int MaxCustomIdLength { get; init; } = 256;

    /// <summary>
    /// Longest input line, in bytes. A longer line is never held whole: it is read past, becomes a
    /// <c>line_too_long</c> error line, and the rest of the file runs. Default 1 MiB, far above the text of any prompt a
    /// model's context holds (a token is a few bytes), so it bounds what one line can cost and refuses nothing that fits.
    /// </summary>
    public int MaxLineBytes { get; init; } = DefaultMaxLineBytes;

    public const int DefaultMaxLineBytes = 1 << 20;

    public static InputFormat FormatFromName(string fileName) =>
        fileName.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) ? InputFormat.Text : InputFormat.Jsonl;

    public void Validate()
    {
        if (RequestsPerShard < 1) throw new ArgumentOutOfRangeException(nameof(RequestsPerShard), RequestsPerShard, "must be at least 1");
        if (MaxCustomIdLength < 1) throw new ArgumentOutOfRangeException(nameof(MaxCustomIdLength), MaxCustomIdLength, "must be at least 1");
        if (MaxLineBytes < 1024) throw new ArgumentOutOfRangeException(nameof(MaxLineBytes), MaxLineBytes, "must be at least 1024");
    }
}

using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Files;

/// <summary>What a file is for (OpenAI's <c>purpose</c>, snake_case on the wire).</summary>
public enum FilePurpose
{
    Batch,
    BatchOutput,
}

/// <summary>
/// A file's metadata, stored beside its content. <see cref="Owner"/> is the tenant that may see it;
/// <see cref="Blob"/> is where the content lives (an upload's own blob, or a finished job's output).
/// <see cref="ExpiresAt"/> (Unix seconds) is when it stops being a file, null when it never does;
/// <see cref="CreatedTicks"/> is <see cref="CreatedAt"/> to the tick, which orders its owner's listing (null in the
/// records of versions before listings: <see cref="CreatedAt"/> then orders it). <see cref="DeletedAt"/> is set on the
/// record a deleted job file leaves behind, so its id is never registered again (an upload's record is deleted).
/// </summary>
public sealed record StoredFile(
    string Id, string Owner, FilePurpose Purpose, string Filename, long Bytes, long CreatedAt, string Blob,
    long? ExpiresAt = null, long? CreatedTicks = null, long? DeletedAt = null)
{
    /// <summary>How the content is read as batch input: <c>.txt</c> → one prompt per line, else JSONL.</summary>
    public InputFormat Format => InputOptions.FormatFromName(Filename);

    /// <summary>Neither deleted nor expired at <paramref name="now"/> (Unix seconds): a file its owner can see.</summary>
    public bool IsLiveAt(long now) => DeletedAt is null && !(ExpiresAt <= now);
}

/// <summary>
/// OpenAI's <c>expires_after</c> (<c>{"anchor": "created_at", "seconds": N}</c>) on an upload, and
/// <c>output_expires_after</c> on a batch (anchored at the output file's own creation): N in OpenAI's bounds.
/// Without one, a <c>batch</c> upload expires after <see cref="DefaultBatchSeconds"/>, as OpenAI's do, and a batch's
/// output and error files never do.
/// </summary>
public static class FileExpiry
{
    /// <summary>OpenAI's bounds of <c>seconds</c>: 1 hour to 30 days.</summary>
    public const long MinSeconds = 3600, MaxSeconds = 2_592_000;

    /// <summary>OpenAI's default for <c>purpose=batch</c> files: 30 days.</summary>
    public const long DefaultBatchSeconds = 2_592_000;

    /// <summary>The one anchor OpenAI supports.</summary>
    public const string CreatedAtAnchor = "created_at";

    public static bool IsInRange(long seconds) => seconds is >= MinSeconds and <= MaxSeconds;

    /// <summary><c>expires_at</c> of a file created at <paramref name="createdAt"/> (Unix seconds) with a policy of
    /// <paramref name="seconds"/>; null when there is no policy.</summary>
    public static long? ExpiresAt(long createdAt, long? seconds) => seconds is { } s ? createdAt + s : null;
}

using System.Text.Json;
using System.Text.Json.Serialization;

namespace VicunaBatch.Core.Formats;

/// <summary>
/// A contiguous range of physical input lines, the body of one queue message. Byte range never
/// splits a line. <see cref="SkipLines"/> lists the line numbers in the range that validation
/// rejected (invalid or duplicate custom_id): a worker parses every other non-blank line, so the
/// duplicate decision, made once over the whole file, is reproduced exactly per shard.
/// </summary>
public sealed record Shard
{
    public required string JobId { get; init; }
    public required int ShardIndex { get; init; }
    public required string InputBlob { get; init; }
    public required InputFormat Format { get; init; }
    public required int FirstLine { get; init; }
    public required int LineCount { get; init; }
    public required long ByteOffset { get; init; }
    public required long ByteLength { get; init; }

    /// <summary>Valid requests in the range.</summary>
    public required int NumRequests { get; init; }

    public IReadOnlyList<int> SkipLines { get; init; } = [];

    [JsonIgnore]
    public int LastLine => FirstLine + LineCount - 1;

    /// <summary>Queue message id: stable per job and shard, so re-sending is deduplicated.</summary>
    [JsonIgnore]
    public string MessageId => $"{JobId}:{ShardIndex}";

    public string ToJson() => JsonSerializer.Serialize(this, FormatsJson.Options);

    public static Shard FromJson(string json) =>
        JsonSerializer.Deserialize<Shard>(json, FormatsJson.Options) ?? throw new JsonException("shard message is null");
}

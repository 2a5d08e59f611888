using System.Runtime.CompilerServices;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Services;

/// <summary>A shard's requests, read from its byte range of the input blob.</summary>
public static class ShardInput
{
    /// <summary>Parses the shard's lines, skipping blank lines and <see cref="Shard.SkipLines"/>.</summary>
    public static async IAsyncEnumerable<ParsedLine> ReadAsync(
        this Shard shard, IBlobStore blobs, LineParser parser, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var skip = shard.SkipLines.ToHashSet();
        await using var stream = await blobs.OpenReadAsync(shard.InputBlob, new BlobRange(shard.ByteOffset, shard.ByteLength), cancellationToken);
        await foreach (var line in PhysicalLineReader.ReadAsync(stream, shard.ByteOffset, shard.FirstLine, parser.MaxLineBytes, cancellationToken))
            if (!line.IsBlank && !skip.Contains(line.LineNumber))
                yield return parser.Parse(line, shard.Format);
    }
}

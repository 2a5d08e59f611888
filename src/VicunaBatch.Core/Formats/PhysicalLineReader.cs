using System.Buffers;
using System.Runtime.CompilerServices;

namespace VicunaBatch.Core.Formats;

/// <summary>
/// One physical line. <see cref="ByteOffset"/>/<see cref="ByteLength"/> span the raw bytes including
/// the line terminator; <see cref="Content"/> has the terminator, a trailing CR and (at offset 0) the
/// UTF-8 BOM removed.
/// </summary>
public sealed record InputLine(int LineNumber, long ByteOffset, int ByteLength, byte[] Content)
{
    /// <summary>True for an empty or whitespace-only line (skipped, but still counted).</summary>
    public bool IsBlank => Content.AsSpan().IndexOfAnyExcept(" \t\r"u8) < 0;
}

/// <summary>Streams physical lines from a stream with their byte positions; never buffers the whole file.</summary>
public static class PhysicalLineReader
{
    private const int ChunkSize = 64 * 1024;
    private static readonly byte[] Bom = [0xEF, 0xBB, 0xBF];

    /// <param name="stream">Read from its current position to its end.</param>
    /// <param name="baseOffset">Absolute file offset of the stream's first byte (a shard's ByteOffset).</param>
    /// <param name="firstLineNumber">Line number of the first line in the stream.</param>
    public static async IAsyncEnumerable<InputLine> ReadAsync(
        Stream stream, long baseOffset = 0, int firstLineNumber = 1,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var chunk = ArrayPool<byte>.Shared.Rent(ChunkSize);
        var pending = new ArrayBufferWriter<byte>();
        long lineStart = baseOffset;
        int lineNumber = firstLineNumber;
        try
        {
            int read;
            while ((read = await stream.ReadAsync(chunk.AsMemory(0, ChunkSize), cancellationToken)) > 0)
            {
                int start = 0, newline;
                while ((newline = chunk.AsSpan(start, read - start).IndexOf((byte)'\n')) >= 0)
                {
                    pending.Write(chunk.AsSpan(start, newline));
                    int length = pending.WrittenCount + 1;
                    yield return MakeLine(lineNumber++, lineStart, length, pending.WrittenSpan);
                    lineStart += length;
                    pending.Clear();
                    start += newline + 1;
                }
                pending.Write(chunk.AsSpan(start, read - start));
            }
            if (pending.WrittenCount > 0)
                yield return MakeLine(lineNumber, lineStart, pending.WrittenCount, pending.WrittenSpan);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    private static InputLine MakeLine(int lineNumber, long offset, int length, ReadOnlySpan<byte> raw)
    {
        if (offset == 0 && raw.StartsWith(Bom)) raw = raw[Bom.Length..];
        if (raw.EndsWith("\r"u8)) raw = raw[..^1];
        return new InputLine(lineNumber, offset, length, raw.ToArray());
    }
}

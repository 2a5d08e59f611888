using System.Buffers;
using System.Runtime.CompilerServices;

namespace VicunaBatch.Core.Formats;

/// <summary>
/// One physical line. <see cref="ByteOffset"/>/<see cref="ByteLength"/> span the raw bytes including
/// the line terminator; <see cref="Content"/> has the terminator, a trailing CR and (at offset 0) the
/// UTF-8 BOM removed. A line over the reader's limit (<see cref="IsOverLimit"/>) was read past: its
/// <see cref="Content"/> is only its first <see cref="PhysicalLineReader.HeadBytes"/> bytes.
/// </summary>
public sealed record InputLine(int LineNumber, long ByteOffset, long ByteLength, byte[] Content)
{
    /// <summary>Longer than the reader's limit; <see cref="Content"/> is the line's head, not all of it.</summary>
    public bool IsOverLimit { get; init; }

    /// <summary>True for an empty or whitespace-only line (skipped, but still counted).</summary>
    public bool IsBlank => !IsOverLimit && Content.AsSpan().IndexOfAnyExcept(" \t\r"u8) < 0;
}

/// <summary>
/// Streams physical lines from a stream with their byte positions; never buffers the whole file, nor more of one line
/// than its limit.
/// </summary>
public static class PhysicalLineReader
{
    private const int ChunkSize = 64 * 1024;
    private static readonly byte[] Bom = [0xEF, 0xBB, 0xBF];

    /// <summary>What is kept of a line over the limit: enough for the custom_id a request line starts with.</summary>
    public const int HeadBytes = 4096;

    /// <param name="stream">Read from its current position to its end.</param>
    /// <param name="baseOffset">Absolute file offset of the stream's first byte (a shard's ByteOffset).</param>
    /// <param name="firstLineNumber">Line number of the first line in the stream.</param>
    /// <param name="maxLineBytes">A longer line (terminator excluded) is yielded with only its head (<see cref="InputLine.IsOverLimit"/>).</param>
    public static async IAsyncEnumerable<InputLine> ReadAsync(
        Stream stream, long baseOffset = 0, int firstLineNumber = 1, int maxLineBytes = int.MaxValue,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var chunk = ArrayPool<byte>.Shared.Rent(ChunkSize);
        var line = new LineBuffer(maxLineBytes);
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
                    line.Add(chunk.AsSpan(start, newline));
                    var made = line.Take(lineNumber++, lineStart, terminator: 1);
                    yield return made;
                    lineStart += made.ByteLength;
                    start += newline + 1;
                }
                line.Add(chunk.AsSpan(start, read - start));
            }
            if (line.Length > 0) yield return line.Take(lineNumber, lineStart, terminator: 0);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    /// <summary>
    /// The line being read: all its bytes while within the limit; past it, only its first <see cref="HeadBytes"/> and a
    /// count of the rest (a trailing CR counts toward the limit: a byte of slack).
    /// </summary>
    private sealed class LineBuffer(int maxLineBytes)
    {
        private readonly ArrayBufferWriter<byte> _kept = new();
        private byte[]? _head;
        private long _skipped;

        public long Length => _kept.WrittenCount + _skipped;

        public void Add(ReadOnlySpan<byte> piece)
        {
            if (_head is null && _kept.WrittenCount + (long)piece.Length <= maxLineBytes)
            {
                _kept.Write(piece);
                return;
            }
            if (_head is null)
            {
                var head = new byte[Math.Min(HeadBytes, _kept.WrittenCount + piece.Length)];
                int fromKept = Math.Min(head.Length, _kept.WrittenCount);
                _kept.WrittenSpan[..fromKept].CopyTo(head);
                piece[..(head.Length - fromKept)].CopyTo(head.AsSpan(fromKept));
                (_head, _skipped) = (head, _kept.WrittenCount);
                _kept.Clear();
            }
            _skipped += piece.Length;
        }

        /// <summary>The line read so far as one <see cref="InputLine"/>; the buffer starts the next.</summary>
        public InputLine Take(int lineNumber, long offset, int terminator)
        {
            ReadOnlySpan<byte> raw = _head ?? _kept.WrittenSpan;
            if (offset == 0 && raw.StartsWith(Bom)) raw = raw[Bom.Length..];
            if (_head is null && raw.EndsWith("\r"u8)) raw = raw[..^1];
            var line = new InputLine(lineNumber, offset, Length + terminator, raw.ToArray()) { IsOverLimit = _head is not null };
            _kept.Clear();
            (_head, _skipped) = (null, 0);
            return line;
        }
    }
}

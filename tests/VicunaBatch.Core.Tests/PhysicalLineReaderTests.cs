using System.Text;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Tests;

public sealed class PhysicalLineReaderTests
{
    private static async Task<List<InputLine>> ReadAsync(Stream stream, int maxLineBytes = int.MaxValue)
    {
        var lines = new List<InputLine>();
        await foreach (var line in PhysicalLineReader.ReadAsync(stream, maxLineBytes: maxLineBytes)) lines.Add(line);
        return lines;
    }

    private static Task<List<InputLine>> ReadAsync(string text, int maxLineBytes = int.MaxValue) =>
        ReadAsync(new MemoryStream(Encoding.UTF8.GetBytes(text)), maxLineBytes);

    [Fact]
    public async Task ReadAsync_lines_haveTheirOffsetsLengthsAndContentWithoutTerminatorCrOrBom()
    {
        var lines = await ReadAsync("\uFEFFone\r\ntwo\n\nlast");

        Assert.Equal([(1, 0L, 8L, "one"), (2, 8L, 4L, "two"), (3, 12L, 1L, ""), (4, 13L, 4L, "last")],
            lines.Select(l => (l.LineNumber, l.ByteOffset, l.ByteLength, Encoding.UTF8.GetString(l.Content))));
        Assert.All(lines, l => Assert.False(l.IsOverLimit));
        Assert.True(lines[2].IsBlank);
    }

    [Fact]
    public async Task ReadAsync_lineOverTheLimit_isReadPastWithoutContentAndTheLinesAroundItKeepTheirPlaces()
    {
        var big = new string('x', 200_000); // spans several of the reader's 64 KiB chunks
        var lines = await ReadAsync($"{new string('a', 1024)}\n{new string('b', 1025)}\n{big}\nafter\n{big}", maxLineBytes: 1024);

        Assert.Equal([(1, 0L, 1025L, false), (2, 1025L, 1026L, true), (3, 2051L, 200_001L, true), (4, 202_052L, 6L, false), (5, 202_058L, 200_000L, true)],
            lines.Select(l => (l.LineNumber, l.ByteOffset, l.ByteLength, l.IsOverLimit)));
        Assert.Equal(1024, lines[0].Content.Length); // exactly the limit: kept
        Assert.Equal("after", Encoding.UTF8.GetString(lines[3].Content));
        Assert.Equal([1025, 4096, 4096], lines.Where(l => l.IsOverLimit).Select(l => l.Content.Length)); // each one's head only
        Assert.Equal(new string('b', 1025), Encoding.UTF8.GetString(lines[1].Content));
        Assert.All(lines, l => Assert.False(l.IsBlank)); // an over-limit line is never skipped as blank, even all spaces
    }

    [Fact]
    public async Task ReadAsync_aLineOf64MiB_costsMemoryBoundedByTheLimitNotTheLine()
    {
        using var stream = new GeneratedLines(64 << 20);

        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var lines = await ReadAsync(stream, maxLineBytes: 1 << 20);
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;

        Assert.Equal([(1, (64L << 20) + 1, true), (2, 6L, false)], lines.Select(l => (l.LineNumber, l.ByteLength, l.IsOverLimit)));
        Assert.True(allocated < 8L << 20, $"{allocated} bytes allocated reading a 64 MiB line"); // held whole: > 128 MiB
    }

    [Theory]
    [InlineData("{\"custom_id\": \"req-7\", \"method\": \"POST\", \"body\": {\"prompt\": \"xxxx", InputFormat.Jsonl, "req-7")] // OpenAI's order
    [InlineData("{\"model\": \"m\", \"stop\": [\"a\", {\"b\": 1}], \"custom_id\": \"after-others\", \"prompt\": \"xx", InputFormat.Jsonl, "after-others")]
    [InlineData("{\"prompt\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", InputFormat.Jsonl, "line-9")]  // after the long field: not in the head
    [InlineData("{\"custom_id\": 12, \"prompt\": \"xxxxxxxxxxxxxxxxxxxx", InputFormat.Jsonl, "line-9")]
    [InlineData("{\"custom_id\": \"   \", \"prompt\": \"xxxxxxxxxxxxxxxxx", InputFormat.Jsonl, "line-9")]
    [InlineData("{\"custom_id\": \"cut off in the mid", InputFormat.Jsonl, "line-9")]
    [InlineData("[\"custom_id\", \"x\"", InputFormat.Jsonl, "line-9")]
    [InlineData("{\"custom_id\": \"req-7\"", InputFormat.Text, "line-9")]
    public void LineParser_overLimitLine_isLineTooLongWithTheCustomIdItsHeadNames(string head, InputFormat format, string customId)
    {
        var parsed = new LineParser(new InputOptions { MaxLineBytes = 1024 })
            .Parse(new InputLine(9, 100, 5_000_001, Encoding.UTF8.GetBytes(head)) { IsOverLimit = true }, format);

        Assert.Null(parsed.Request);
        Assert.Equal((LineErrorCode.LineTooLong, customId, 9, "the line is 5000001 bytes, over the limit of 1024 (Input:MaxLineBytes)"),
            (parsed.Error!.Code, parsed.Error.CustomId, parsed.Error.LineNumber, parsed.Error.Message));
    }

    /// <summary>One line of <c>length</c> bytes of 'x', then "tail\r\n": made as it is read, never held (a file would be).
    /// Reads complete synchronously, so the reader runs on the test's thread and its allocations are counted there.</summary>
    private sealed class GeneratedLines(long length) : Stream
    {
        private static readonly byte[] Tail = "\ntail\r\n"u8.ToArray();
        private long _position;

        public override int Read(Span<byte> buffer)
        {
            int n = 0;
            while (n < buffer.Length && _position < length + Tail.Length)
            {
                if (_position < length)
                {
                    int run = (int)Math.Min(buffer.Length - n, length - _position);
                    buffer.Slice(n, run).Fill((byte)'x');
                    (n, _position) = (n + run, _position + run);
                }
                else
                {
                    buffer[n++] = Tail[_position++ - length];
                }
            }
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer, offset, count));
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Tests.Pipelines;

/// <summary>One token per character (the code point), so chunk boundaries read as text.</summary>
internal sealed class CharTokenizer : IDocumentTokenizer
{
    public IReadOnlyList<int> Encode(string text) => text.Select(c => (int)c).ToList();

    public string Decode(IReadOnlyList<int> ids) => new(ids.Select(i => (char)i).ToArray());
}

public sealed class TokenChunkerTests
{
    [Theory]
    [InlineData(0, 4, 1, "0-0")]
    [InlineData(4, 4, 1, "0-4")]
    [InlineData(5, 4, 1, "0-4 3-5")]
    [InlineData(10, 4, 1, "0-4 3-7 6-10")]
    [InlineData(11, 4, 1, "0-4 3-7 6-10 9-11")]
    [InlineData(10, 4, 0, "0-4 4-8 8-10")]
    [InlineData(10, 5, 3, "0-5 2-7 4-9 6-10")]
    public void Ranges_windowsOverlapByTheOverlapAndEndAtTheLastToken(int numTokens, int chunk, int overlap, string expected)
    {
        var ranges = TokenChunker.Ranges(numTokens, new ChunkingOptions(chunk, overlap));

        Assert.Equal(expected, string.Join(' ', ranges.Select(r => $"{r.Start}-{r.End}")));
    }

    [Fact]
    public void Split_longText_chunkTextsShareTheOverlap()
    {
        var chunks = TokenChunker.Split(new CharTokenizer(), "abcdefghijk", new ChunkingOptions(4, 1));

        Assert.Equal(["abcd", "defg", "ghij", "jk"], chunks.Select(c => c.Text));
        Assert.Equal([0, 1, 2, 3], chunks.Select(c => c.Index));
        Assert.Equal([(0, 4), (3, 7), (6, 10), (9, 11)], chunks.Select(c => (c.Start, c.End)));
    }

    [Fact]
    public void Split_textThatFits_isOneChunkOfTheOriginalText()
    {
        var chunk = Assert.Single(TokenChunker.Split(new CharTokenizer(), "abc", new ChunkingOptions(4, 1)));

        Assert.Equal(new DocumentChunk(0, 0, 3, "abc"), chunk);
    }

    [Fact]
    public void Ranges_overlapNotBelowChunk_throws() =>
        Assert.Throws<ArgumentException>(() => TokenChunker.Ranges(10, new ChunkingOptions(4, 4)));
}

using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Pipelines;

/// <summary>A chunk of a document: token range [<see cref="Start"/>, <see cref="End"/>) and its text.</summary>
public sealed record DocumentChunk(int Index, int Start, int End, string Text);

/// <summary>Splits token sequences into windows of <c>ChunkTokens</c>, each starting <c>ChunkTokens - OverlapTokens</c> after the previous.</summary>
public static class TokenChunker
{
    /// <summary>Token ranges of the chunks: [0, n) when it fits; else windows of the chunk size, the last ending at n.</summary>
    public static IReadOnlyList<(int Start, int End)> Ranges(int numTokens, ChunkingOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numTokens);
        if (options.OverlapTokens >= options.ChunkTokens)
            throw new ArgumentException($"overlap {options.OverlapTokens} must be less than chunk size {options.ChunkTokens}", nameof(options));
        var ranges = new List<(int, int)>();
        int stride = options.ChunkTokens - options.OverlapTokens;
        for (int start = 0; ; start += stride)
        {
            int end = Math.Min(start + options.ChunkTokens, numTokens);
            ranges.Add((start, end));
            if (end == numTokens) return ranges;
        }
    }

    public static IReadOnlyList<DocumentChunk> Split(IDocumentTokenizer tokenizer, string text, ChunkingOptions options)
    {
        var ids = tokenizer.Encode(text);
        var ranges = Ranges(ids.Count, options);
        if (ranges.Count == 1) return [new DocumentChunk(0, 0, ids.Count, text)];
        var ids2 = ids as List<int> ?? [.. ids];
        return ranges.Select((r, i) => new DocumentChunk(i, r.Start, r.End, tokenizer.Decode(ids2.GetRange(r.Start, r.End - r.Start)))).ToList();
    }
}

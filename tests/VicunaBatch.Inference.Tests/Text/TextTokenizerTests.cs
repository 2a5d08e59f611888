using VicunaBatch.Inference.Text;

namespace VicunaBatch.Inference.Tests.Text;

/// <summary>Python sentencepiece answers for the LLaMA tokenizer and for a small BPE model trained by this run.</summary>
public sealed class SentencePieceReferenceFixture : IDisposable
{
    public SentencePieceReferenceFixture()
    {
        Texts = TokenizerCorpus.All();
        LlamaAnswers = SentencePieceOracle.Encode(SentencePieceOracle.LlamaTokenizerPath, Texts);
        SmallBpePath = SentencePieceOracle.Train(TempFolder, SentencePieceOracle.BenchmarkTurns(), vocabSize: 2000);
        SmallBpeAnswers = SentencePieceOracle.Encode(SmallBpePath, Texts);
    }

    public string TempFolder { get; } = Path.Combine(Path.GetTempPath(), "vicuna-spm-" + Guid.NewGuid().ToString("N"));
    public IReadOnlyList<string> Texts { get; }
    public IReadOnlyList<OracleAnswer> LlamaAnswers { get; }
    public string SmallBpePath { get; }
    public IReadOnlyList<OracleAnswer> SmallBpeAnswers { get; }

    public void Dispose() => Directory.Delete(TempFolder, recursive: true);
}

public sealed class TextTokenizerTests(SentencePieceReferenceFixture reference) : IClassFixture<SentencePieceReferenceFixture>
{
    private static readonly Lazy<TextTokenizer> Llama = new(() => TextTokenizer.Load(SentencePieceOracle.LlamaTokenizerPath));

    [Fact]
    public void Encode_benchmarkTurnsAndEdgeCasesWithLlama_equalsSentencePieceIds()
    {
        Assert.Equal(240 + TokenizerCorpus.EdgeCases.Length, reference.Texts.Count);
        Assert.Empty(Mismatches(Llama.Value, reference.LlamaAnswers, a => a.Ids, (t, s) => t.Encode(s).ToArray()));
    }

    [Fact]
    public void Encode_benchmarkTurnsAndEdgeCasesWithSmallTrainedBpe_equalsSentencePieceIds()
    {
        var tokenizer = TextTokenizer.Load(reference.SmallBpePath);
        Assert.Empty(Mismatches(tokenizer, reference.SmallBpeAnswers, a => a.Ids, (t, s) => t.Encode(s).ToArray()));
    }

    [Fact]
    public void Decode_ofEncodeWithLlama_roundTripsEveryText()
    {
        // LLaMA's normalizer is "identity" without whitespace removal, so every text comes back unchanged.
        List<string> changed = [.. reference.Texts.Where(s => Llama.Value.Decode(Llama.Value.Encode(s)) != s)];
        Assert.Empty(changed);
        Assert.Empty(Mismatches(Llama.Value, reference.LlamaAnswers, a => a.Decoded, (t, s) => t.Decode(t.Encode(s))));
    }

    [Fact]
    public void Decode_ofEncodeWithSmallTrainedBpe_equalsSentencePieceDecode()
    {
        var tokenizer = TextTokenizer.Load(reference.SmallBpePath);
        Assert.Empty(Mismatches(tokenizer, reference.SmallBpeAnswers, a => a.Decoded, (t, s) => t.Decode(t.Encode(s))));
    }

    [Theory]
    [InlineData("  both sides  ", "both sides")] // nmt_nfkc + remove_extra_whitespaces: trimmed
    [InlineData("multiple  spaces", "multiple spaces")] // runs collapsed to one space
    [InlineData("line one\nline two", "line one line two")] // newline becomes a space
    [InlineData("Ｈｅｌｌｏ ﬁ ①", "Hello fi 1")] // NFKC
    [InlineData("\n", "")]
    public void Decode_ofEncodeWithSmallTrainedBpe_appliesNfkcNormalization(string text, string expected)
    {
        var tokenizer = TextTokenizer.Load(reference.SmallBpePath);

        Assert.Equal(expected, tokenizer.Decode(tokenizer.Encode(text)));
    }

    [Fact]
    public void MinTokenCount_isAtMostTheCountOfEveryCorpusTextAndOfLongRuns()
    {
        var small = TextTokenizer.Load(reference.SmallBpePath);
        string[] runs = [new string('a', 5000), string.Concat(Enumerable.Repeat("the ", 2000)), string.Concat(Enumerable.Repeat("日本語 ", 800)), new string('-', 3000)];
        List<string> over = [.. from tokenizer in new[] { Llama.Value, small }
                                from text in reference.Texts.Concat(runs)
                                where tokenizer.MinTokenCount(text) > tokenizer.Encode(text).Count
                                select $"{tokenizer.MinTokenCount(text)} > {tokenizer.Encode(text).Count}: {text[..Math.Min(40, text.Length)]}"];

        Assert.Empty(over);
        Assert.True(Llama.Value.MinTokenCount(runs[0]) >= 5000 / Llama.Value.MaxPieceChars); // a bound, not zero
        Assert.Equal(0, Llama.Value.MinTokenCount(""));
    }

    [Fact]
    public void Encode_helloWorldWithLlama_returnsKnownIds()
    {
        Assert.Equal([15043, 3186], Llama.Value.Encode("Hello world"));
        Assert.Equal([29871, 29896, 29906, 29941, 29889, 29945], Llama.Value.Encode("123.5"));
        Assert.Empty(Llama.Value.Encode(""));
    }

    [Fact]
    public void Properties_llama_matchSentencePiece()
    {
        Assert.Equal(32000, Llama.Value.VocabSize);
        Assert.Equal(1, Llama.Value.BosId);
        Assert.Equal(2, Llama.Value.EosId);
    }

    [Fact]
    public void Decode_controlUnknownAndBrokenBytes_matchesSentencePiece()
    {
        // Expected strings are python sentencepiece 0.1.97's decode of the same ids.
        Assert.Equal("Hello Hello", Llama.Value.Decode([1, 15043, 2, 15043]));
        Assert.Equal(" \u2047  Hello", Llama.Value.Decode([0, 15043]));
        Assert.Equal("\uFFFD\uFFFD\uFFFD Hello", Llama.Value.Decode([243, 162, 148, 15043]));
        Assert.Equal("\n Hello", Llama.Value.Decode([13, 15043]));
    }

    [Fact]
    public void Load_unigramModel_throwsNotSupported()
    {
        string path = SentencePieceOracle.Train(Path.Combine(reference.TempFolder, "unigram"), SentencePieceOracle.BenchmarkTurns(), 1000, "unigram");

        var error = Assert.Throws<NotSupportedException>(() => TextTokenizer.Load(path));
        Assert.Equal($"Tokenizer model '{path}' is a SentencePiece Unigram model; only BPE models are supported.", error.Message);
    }

    private IReadOnlyList<string> Mismatches<T>(TextTokenizer tokenizer, IReadOnlyList<OracleAnswer> answers,
        Func<OracleAnswer, T> expected, Func<TextTokenizer, string, T> actual)
    {
        return [.. reference.Texts.Select((text, i) => (text, i))
            .Where(x => !Equal(expected(answers[x.i]), actual(tokenizer, x.text)))
            .Select(x => $"{x.i}: {System.Text.Json.JsonSerializer.Serialize(x.text)}")];

        static bool Equal(T a, T b) => a is int[] x && b is int[] y ? x.SequenceEqual(y) : EqualityComparer<T>.Default.Equals(a, b);
    }
}

using VicunaBatch.Inference.Text;

namespace VicunaBatch.Inference.Tests.Text;

public sealed class IncrementalDecoderTests
{
    private static readonly Lazy<TextTokenizer> Llama = new(() => TextTokenizer.Load(SentencePieceOracle.LlamaTokenizerPath));

    [Fact]
    public void Append_everyCorpusText_concatenationEqualsDecodeOfEachPrefixWithoutPendingBytes()
    {
        var failures = new List<string>();
        foreach (string text in TokenizerCorpus.All())
        {
            var ids = Llama.Value.Encode(text);
            var decoder = new IncrementalDecoder(Llama.Value);
            string streamed = "";
            for (int n = 1; n <= ids.Count; n++)
            {
                streamed += decoder.Append(ids[n - 1]);
                if (!decoder.HasPendingBytes && streamed != Llama.Value.Decode([.. ids.Take(n)]))
                {
                    failures.Add($"{System.Text.Json.JsonSerializer.Serialize(text)} after {n} ids");
                    break;
                }
            }
            Assert.False(decoder.HasPendingBytes);
        }
        Assert.Empty(failures);
    }

    [Fact]
    public void Append_emojiByteFallback_holdsBytesUntilCharacterIsComplete()
    {
        var decoder = new IncrementalDecoder(Llama.Value);

        // "▁" then the 4 UTF-8 bytes of U+1F44D.
        string[] increments = [.. new[] { 29871, 243, 162, 148, 144 }.Select(decoder.Append)];

        Assert.Equal(["", "", "", "", "\U0001F44D"], increments);
        Assert.False(decoder.HasPendingBytes);
    }

    [Fact]
    public void Append_leadingSpacePieces_dropsOnlyTheFirstSpace()
    {
        var decoder = new IncrementalDecoder(Llama.Value);

        string[] increments = [.. new[] { 29871, 29871, 15043 }.Select(decoder.Append)];

        Assert.Equal(["", " ", " Hello"], increments);
    }

    [Fact]
    public void Append_controlPieces_areInvisibleAndKeepTheFirstSpaceRule()
    {
        var decoder = new IncrementalDecoder(Llama.Value);

        string[] increments = [.. new[] { 1, 15043, 2, 15043 }.Select(decoder.Append)];

        Assert.Equal(["", "Hello", "", " Hello"], increments);
    }

    [Fact]
    public void Append_newlineThenWord_keepsTheWordsSpace()
    {
        var decoder = new IncrementalDecoder(Llama.Value);

        string[] increments = [.. new[] { 13, 15043, 3186 }.Select(decoder.Append)];

        Assert.Equal(["\n", " Hello", " world"], increments);
    }

    [Fact]
    public void Flush_unfinishedUtf8Character_emitsOneReplacementCharPerByte()
    {
        var decoder = new IncrementalDecoder(Llama.Value);
        string[] increments = [.. new[] { 243, 162, 148 }.Select(decoder.Append)];

        Assert.Equal(["", "", ""], increments);
        Assert.True(decoder.HasPendingBytes);
        Assert.Equal("\uFFFD\uFFFD\uFFFD", decoder.Flush());
        Assert.False(decoder.HasPendingBytes);
    }

    [Fact]
    public void Append_invalidLeadByte_emitsReplacementCharImmediately()
    {
        var decoder = new IncrementalDecoder(Llama.Value);

        // 0x80 (id 131) can never start a UTF-8 character.
        Assert.Equal("\uFFFD", decoder.Append(131));
        Assert.False(decoder.HasPendingBytes);
    }

    [Fact]
    public void Append_idOutsideVocabulary_throws()
    {
        var decoder = new IncrementalDecoder(Llama.Value);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => decoder.Append(32000));
        Assert.Equal("id", error.ParamName);
    }
}

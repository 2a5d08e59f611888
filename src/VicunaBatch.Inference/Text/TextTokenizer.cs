namespace VicunaBatch.Inference.Text;

/// <summary>
/// A SentencePiece BPE tokenizer (<c>tokenizer.model</c>) whose ids equal python
/// <c>SentencePieceProcessor.encode(text)</c>: no BOS/EOS added.
/// </summary>
/// <remarks>
/// Reimplements SentencePiece's normalizer and BPE merge loop instead of calling
/// Microsoft.ML.Tokenizers 2.0.1's <c>SentencePieceTokenizer</c>, which breaks score ties between merges
/// differently from SentencePiece (LLaMA: "aaaa aaaaaaa", runs of spaces in code, "zzzzzz" give other ids)
/// and drops text under precompiled (nmt_nfkc) normalization ("naïve" loses the "ï", "  a" encodes to nothing).
/// </remarks>
public sealed class TextTokenizer
{
    private readonly PieceNormalizer _normalizer;
    private readonly BpeSegmenter _segmenter;

    private TextTokenizer(SentencePieceModel model)
    {
        Model = model;
        _normalizer = new PieceNormalizer(model);
        _segmenter = new BpeSegmenter(model);
    }

    /// <summary>Number of pieces, including control and byte pieces (32000 for LLaMA).</summary>
    public int VocabSize => Model.Pieces.Count;

    /// <summary>Id of "&lt;s&gt;" (1 for LLaMA).</summary>
    public int BosId => Model.BosId;

    /// <summary>Id of "&lt;/s&gt;" (2 for LLaMA).</summary>
    public int EosId => Model.EosId;

    internal SentencePieceModel Model { get; }

    /// <summary>Loads a SentencePiece BPE model; throws <see cref="NotSupportedException"/> for other model types.</summary>
    public static TextTokenizer Load(string path)
    {
        var model = SentencePieceModel.Parse(File.ReadAllBytes(path));
        if (model.ModelType != SentencePieceModelType.Bpe)
        {
            throw new NotSupportedException(
                $"Tokenizer model '{path}' is a SentencePiece {model.ModelType} model; only BPE models are supported.");
        }
        if (model.TreatWhitespaceAsSuffix)
        {
            throw new NotSupportedException($"Tokenizer model '{path}' sets treat_whitespace_as_suffix, which is not supported.");
        }
        if (model.Pieces.Count == 0 || model.BosId < 0 || model.BosId >= model.Pieces.Count || model.EosId < 0 || model.EosId >= model.Pieces.Count)
        {
            throw new InvalidDataException(
                $"Tokenizer model '{path}' is not usable: {model.Pieces.Count} pieces, bos id {model.BosId}, eos id {model.EosId}.");
        }
        return new TextTokenizer(model);
    }

    /// <summary>SentencePiece ids of <paramref name="text"/>, without BOS/EOS.</summary>
    public IReadOnlyList<int> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        _segmenter.Encode(_normalizer.Normalize(text), ids);
        return ids;
    }

    /// <summary>
    /// Text of <paramref name="ids"/> as SentencePiece decodes it: control pieces (BOS/EOS) vanish, the "▁" of the
    /// first other piece is dropped, and each byte of an invalid byte-fallback sequence becomes U+FFFD.
    /// </summary>
    public string Decode(IReadOnlyList<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var decoder = new IncrementalDecoder(this);
        var text = new System.Text.StringBuilder();
        foreach (int id in ids)
        {
            text.Append(decoder.Append(id));
        }
        return text.Append(decoder.Flush()).ToString();
    }
}

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
        MaxPieceChars = Math.Max(1, model.Pieces.Where(p => p.Type is PieceType.Normal or PieceType.UserDefined).Select(p => p.Piece.Length).DefaultIfEmpty(1).Max());
    }

    /// <summary>
    /// The most normalized text one id stands for, in UTF-16 chars (its longest piece; a byte or unknown piece stands
    /// for at most one char): the bound <see cref="MinTokenCount"/> rests on.
    /// </summary>
    public int MaxPieceChars { get; }

    /// <summary>Number of pieces, including control and byte pieces (32000 for LLaMA).</summary>
    public int VocabSize => Model.Pieces.Count;

    /// <summary>Id of "&lt;s&gt;" (1 for LLaMA).</summary>
    public int BosId => Model.BosId;

    /// <summary>Id of "&lt;/s&gt;" (2 for LLaMA).</summary>
    public int EosId => Model.EosId;

    internal SentencePieceModel Model { get; }

    /// <summary>Loads a SentencePiece BPE model; throws <see cref="NotSupportedException"/> for other model types.</summary>
    public static TextTokenizer Load(string path) => Parse(File.ReadAllBytes(path), path);

    /// <summary>A SentencePiece BPE model from its bytes; <paramref name="path"/> names it in errors (a file, or a package in memory).</summary>
    public static TextTokenizer Parse(ReadOnlySpan<byte> bytes, string path)
    {
        var model = SentencePieceModel.Parse(bytes);
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
    /// A lower bound on <c>Encode(text).Count</c> that costs one pass of normalization and no segmentation: no id
    /// stands for more than <see cref="MaxPieceChars"/> chars of the normalized text. It lets a caller refuse a text far
    /// too long for a context without running BPE over all of it.
    /// </summary>
    public int MinTokenCount(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var normalized = _normalizer.Normalize(text).Length;
        return (normalized + MaxPieceChars - 1) / MaxPieceChars;
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

    /// <summary>
    /// The UTF-8 bytes one id stands for on its own, as a log probability reports a token: a byte piece's one byte, a
    /// piece's text with "▁" as a space (kept at the start too), the unknown piece's surface, nothing for a control piece.
    /// </summary>
    public byte[] TokenBytes(int id)
    {
        if ((uint)id >= (uint)Model.Pieces.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id must be in [0, {Model.Pieces.Count}).");
        }
        var (piece, _, type) = Model.Pieces[id];
        return type switch
        {
            PieceType.Byte => [Convert.ToByte(piece[3..5], 16)],
            PieceType.Control => [],
            _ when id == Model.UnkId => System.Text.Encoding.UTF8.GetBytes(Model.UnkSurface),
            _ => System.Text.Encoding.UTF8.GetBytes(piece.Replace('\u2581', ' ')),
        };
    }
}

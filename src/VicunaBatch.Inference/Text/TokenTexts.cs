using System.Text;

namespace VicunaBatch.Inference.Text;

/// <summary>What each token writes, as UTF-8 bytes: the grammar's view of a vocabulary (<see cref="Grammar.TokenTrie"/>).</summary>
public static class TokenTexts
{
    private const char SpaceSymbol = '\u2581';

    /// <summary>
    /// Per id: a normal piece's text with "▁" as a space, a byte piece's one byte; null for control, unknown and unused
    /// pieces, which write nothing a grammar can read. (Decoding drops the first piece's leading "▁"; a grammar that
    /// allows whitespace there reads the same text less that space.)
    /// </summary>
    public static IReadOnlyList<byte[]?> Of(TextTokenizer tokenizer) =>
        tokenizer.Model.Pieces.Select(p => p.Type switch
        {
            PieceType.Normal or PieceType.UserDefined => Encoding.UTF8.GetBytes(p.Piece.Replace(SpaceSymbol, ' ')),
            PieceType.Byte => [Convert.ToByte(p.Piece[3..5], 16)],
            _ => (byte[]?)null,
        }).ToArray();
}

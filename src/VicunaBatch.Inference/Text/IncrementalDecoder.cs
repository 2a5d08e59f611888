using System.Buffers;
using System.Text;

namespace VicunaBatch.Inference.Text;

/// <summary>
/// Streams the text of ids appended one at a time. The concatenation of everything returned equals
/// <see cref="TextTokenizer.Decode"/> of all ids appended so far whenever <see cref="HasPendingBytes"/> is false;
/// byte-fallback pieces are held back until they complete a UTF-8 character.
/// </summary>
public sealed class IncrementalDecoder(TextTokenizer tokenizer)
{
    private const char SpaceSymbol = '\u2581';

    private readonly SentencePieceModel _model = tokenizer.Model;
    private readonly List<byte> _pendingBytes = [];
    private bool _atStart = true; // SentencePiece drops the leading "▁" of the first piece that is not a control piece

    /// <summary>True while byte pieces of an unfinished UTF-8 character are held back.</summary>
    public bool HasPendingBytes => _pendingBytes.Count > 0;

    /// <summary>Returns the text that <paramref name="id"/> adds (possibly empty).</summary>
    public string Append(int id)
    {
        if ((uint)id >= (uint)_model.Pieces.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id must be in [0, {_model.Pieces.Count}).");
        }
        var (piece, _, type) = _model.Pieces[id];
        if (type == PieceType.Byte)
        {
            _atStart = false;
            _pendingBytes.Add(Convert.ToByte(piece[3..5], 16));
            return DrainBytes(final: false);
        }

        string flushed = DrainBytes(final: true);
        if (type == PieceType.Control)
        {
            return flushed;
        }
        string surface = id == _model.UnkId ? _model.UnkSurface : Surface(piece);
        _atStart = false;
        return flushed + surface;
    }

    /// <summary>Emits held-back bytes as U+FFFD, one per byte, as SentencePiece does for an unfinished character.</summary>
    public string Flush() => DrainBytes(final: true);

    private string Surface(string piece)
    {
        bool dropSpace = _atStart && (_model.AddDummyPrefix || _model.RemoveExtraWhitespaces)
            && piece.Length > 0 && piece[0] == SpaceSymbol;
        return (dropSpace ? piece[1..] : piece).Replace(SpaceSymbol, ' ');
    }

    /// <summary>
    /// Decodes complete characters off the front of the pending bytes; an invalid byte becomes U+FFFD and consumes
    /// one byte. Unless <paramref name="final"/>, an incomplete but still valid tail stays pending.
    /// </summary>
    private string DrainBytes(bool final)
    {
        if (_pendingBytes.Count == 0)
        {
            return "";
        }
        var bytes = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pendingBytes);
        var text = new StringBuilder();
        int position = 0;
        while (position < bytes.Length)
        {
            var status = Rune.DecodeFromUtf8(bytes[position..], out Rune rune, out int consumed);
            if (status == OperationStatus.Done)
            {
                text.Append(rune.ToString());
                position += consumed;
            }
            else if (status == OperationStatus.NeedMoreData && !final)
            {
                break;
            }
            else
            {
                text.Append('\uFFFD');
                position += 1;
            }
        }
        _pendingBytes.RemoveRange(0, position);
        return text.ToString();
    }
}

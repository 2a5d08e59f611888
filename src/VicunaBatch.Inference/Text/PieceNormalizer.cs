using System.Buffers.Binary;
using System.Text;

namespace VicunaBatch.Inference.Text;

/// <summary>
/// SentencePiece's <c>Normalizer::Normalize</c>: optional precompiled character map (e.g. nmt_nfkc),
/// dummy-prefix "▁", whitespace escaping and extra-whitespace removal, on UTF-8 bytes like the C++ code.
/// </summary>
internal sealed class PieceNormalizer
{
    private const string SpaceSymbol = "\u2581";
    private static readonly byte[] ReplacementChar = [0xEF, 0xBF, 0xBD];

    private readonly uint[] _trieUnits; // Darts-clone double array, empty for the identity normalizer
    private readonly byte[] _normalized; // '\0'-terminated replacement strings addressed by trie values
    private readonly bool _addDummyPrefix;
    private readonly bool _removeExtraWhitespaces;
    private readonly bool _escapeWhitespaces;

    public PieceNormalizer(SentencePieceModel model)
    {
        _addDummyPrefix = model.AddDummyPrefix;
        _removeExtraWhitespaces = model.RemoveExtraWhitespaces;
        _escapeWhitespaces = model.EscapeWhitespaces;
        (_trieUnits, _normalized) = SplitCharsMap(model.PrecompiledCharsMap);
    }

    /// <summary>Appends UTF-8 <paramref name="bytes"/> as chars, without a string per piece (a prompt is millions of them).</summary>
    private static void AppendUtf8(StringBuilder output, ReadOnlySpan<byte> bytes)
    {
        Span<char> chars = bytes.Length <= 256 ? stackalloc char[bytes.Length] : new char[bytes.Length];
        output.Append(chars[..Encoding.UTF8.GetChars(bytes, chars)]);
    }

    public string Normalize(string text)
    {
        ReadOnlySpan<byte> input = Encoding.UTF8.GetBytes(text);
        if (_removeExtraWhitespaces)
        {
            while (!input.IsEmpty)
            {
                int consumed = NormalizePrefix(input, out var replacement);
                if (!replacement.SequenceEqual(" "u8))
                {
                    break;
                }
                input = input[consumed..];
            }
        }
        if (input.IsEmpty)
        {
            return "";
        }

        var output = new StringBuilder(input.Length + 1);
        var chunk = new List<byte>();
        if (_addDummyPrefix)
        {
            output.Append(_escapeWhitespaces ? SpaceSymbol : " ");
        }
        bool isPrevSpace = _removeExtraWhitespaces;
        while (!input.IsEmpty)
        {
            int consumed = NormalizePrefix(input, out var replacement);
            if (isPrevSpace)
            {
                while (!replacement.IsEmpty && replacement[0] == (byte)' ')
                {
                    replacement = replacement[1..];
                }
            }
            if (!replacement.IsEmpty)
            {
                AppendUtf8(output, replacement);
                isPrevSpace = replacement[^1] == (byte)' ';
            }
            input = input[consumed..];
            if (!_removeExtraWhitespaces)
            {
                isPrevSpace = false;
            }
        }

        if (_escapeWhitespaces)
        {
            output.Replace(" ", SpaceSymbol);
        }
        string normalized = output.ToString();
        if (_removeExtraWhitespaces)
        {
            normalized = normalized.TrimEnd(_escapeWhitespaces ? '\u2581' : ' ');
        }
        return normalized;
    }

    /// <summary>Longest rule of the character map matching the start of <paramref name="input"/>, else one UTF-8 char; returns bytes consumed.</summary>
    private int NormalizePrefix(ReadOnlySpan<byte> input, out ReadOnlySpan<byte> replacement)
    {
        var (length, value) = LongestPrefixMatch(input);
        if (length > 0)
        {
            replacement = _normalized.AsSpan(value);
            int end = replacement.IndexOf((byte)0);
            replacement = end < 0 ? replacement : replacement[..end];
            return length;
        }
        // A malformed byte becomes U+FFFD but consumes only that byte, as in SentencePiece.
        if (Rune.DecodeFromUtf8(input, out _, out int consumed) == System.Buffers.OperationStatus.Done)
        {
            replacement = input[..consumed];
            return consumed;
        }
        replacement = ReplacementChar;
        return 1;
    }

    /// <summary>Darts-clone <c>commonPrefixSearch</c>, keeping the longest match.</summary>
    private (int Length, int Value) LongestPrefixMatch(ReadOnlySpan<byte> key)
    {
        if (_trieUnits.Length == 0)
        {
            return (0, 0);
        }
        int longestLength = 0, longestValue = 0;
        uint nodePos = Offset(_trieUnits[0]);
        for (int i = 0; i < key.Length; i++)
        {
            nodePos ^= key[i];
            uint unit = _trieUnits[nodePos];
            if ((unit & 0x800000FFu) != key[i])
            {
                break;
            }
            nodePos ^= Offset(unit);
            bool hasLeaf = ((unit >> 8) & 1) == 1;
            if (hasLeaf)
            {
                longestLength = i + 1;
                longestValue = (int)(_trieUnits[nodePos] & 0x7FFFFFFFu);
            }
        }
        return (longestLength, longestValue);
    }

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);

    // Blob layout: [uint32 trieByteCount][trie units][normalized strings].
    private static (uint[] TrieUnits, byte[] Normalized) SplitCharsMap(byte[] blob)
    {
        if (blob.Length == 0)
        {
            return ([], []);
        }
        int trieByteCount = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(blob));
        var units = new uint[trieByteCount / 4];
        for (int i = 0; i < units.Length; i++)
        {
            units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(4 + 4 * i));
        }
        return (units, blob[(4 + trieByteCount)..]);
    }
}

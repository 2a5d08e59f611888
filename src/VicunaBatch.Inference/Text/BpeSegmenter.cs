using System.Text;

namespace VicunaBatch.Inference.Text;

/// <summary>
/// SentencePiece's BPE <c>Model::Encode</c> plus the processor's byte fallback: start from single
/// characters (user-defined pieces kept whole), repeatedly merge the adjacent pair whose merged piece
/// scores highest — ties go to the leftmost pair — then split unused pieces back and spell unknown
/// pieces as &lt;0xXX&gt; byte pieces.
/// </summary>
internal sealed class BpeSegmenter
{
    private readonly SentencePieceModel _model;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _mergeable; // normal, user-defined, unused
    private readonly Dictionary<string, int> _pieceToId = [];
    private readonly string[] _userDefined; // longest first
    private readonly int[] _byteToId = new int[256];

    public BpeSegmenter(SentencePieceModel model)
    {
        _model = model;
        var mergeable = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < model.Pieces.Count; id++)
        {
            var (piece, _, type) = model.Pieces[id];
            _pieceToId.TryAdd(piece, id);
            if (type is PieceType.Normal or PieceType.UserDefined or PieceType.Unused)
            {
                mergeable.TryAdd(piece, id);
            }
            if (type == PieceType.Byte)
            {
                _byteToId[Convert.ToByte(piece[3..5], 16)] = id;
            }
        }
        _mergeable = mergeable.GetAlternateLookup<ReadOnlySpan<char>>();
        _userDefined = [.. model.Pieces.Where(p => p.Type == PieceType.UserDefined).Select(p => p.Piece).OrderByDescending(p => p.Length)];
    }

    /// <summary>Appends the ids of an already normalized text.</summary>
    public void Encode(string normalized, List<int> ids)
    {
        var symbols = SplitCharacters(normalized);
        var agenda = new PriorityQueue<(int Left, int Right, int Length), (float Score, int Left)>(PairOrder.Instance);
        var reverseMerges = new Dictionary<string, (string Left, string Right)>(); // keyed by piece, as in SentencePiece

        void MaybeAddPair(int left, int right)
        {
            if (left < 0 || right < 0 || symbols[left].Frozen || symbols[right].Frozen)
            {
                return;
            }
            int length = symbols[left].Length + symbols[right].Length;
            if (!_mergeable.TryGetValue(normalized.AsSpan(symbols[left].Start, length), out int id))
            {
                return;
            }
            agenda.Enqueue((left, right, length), (_model.Pieces[id].Score, left));
            if (_model.Pieces[id].Type == PieceType.Unused)
            {
                reverseMerges[normalized.Substring(symbols[left].Start, length)] = (SymbolText(left), SymbolText(right));
            }
        }

        string SymbolText(int index) => normalized.Substring(symbols[index].Start, symbols[index].Length);

        for (int i = 1; i < symbols.Length; i++)
        {
            MaybeAddPair(i - 1, i);
        }
        while (agenda.TryDequeue(out var pair, out _))
        {
            ref var left = ref symbols[pair.Left];
            ref var right = ref symbols[pair.Right];
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != pair.Length)
            {
                continue; // stale: one side was merged elsewhere since this pair was queued
            }
            left.Length += right.Length;
            left.Next = right.Next;
            if (right.Next >= 0)
            {
                symbols[right.Next].Prev = pair.Left;
            }
            right.Length = 0;
            MaybeAddPair(left.Prev, pair.Left);
            MaybeAddPair(pair.Left, left.Next);
        }

        for (int i = 0; i >= 0 && i < symbols.Length; i = symbols[i].Next)
        {
            Resegment(SymbolText(i), reverseMerges, ids);
        }
    }

    private void Resegment(string piece, Dictionary<string, (string Left, string Right)> reverseMerges, List<int> ids)
    {
        if (!_pieceToId.TryGetValue(piece, out int id) || id == _model.UnkId)
        {
            AppendUnknown(piece, ids);
            return;
        }
        if (_model.Pieces[id].Type == PieceType.Unused && reverseMerges.TryGetValue(piece, out var merge))
        {
            Resegment(merge.Left, reverseMerges, ids);
            Resegment(merge.Right, reverseMerges, ids);
            return;
        }
        ids.Add(id);
    }

    private void AppendUnknown(string piece, List<int> ids)
    {
        if (!_model.ByteFallback)
        {
            // SentencePiece merges consecutive unknowns into one.
            if (ids.Count == 0 || ids[^1] != _model.UnkId)
            {
                ids.Add(_model.UnkId);
            }
            return;
        }
        foreach (byte b in Encoding.UTF8.GetBytes(piece))
        {
            ids.Add(_byteToId[b]);
        }
    }

    private Symbol[] SplitCharacters(string text)
    {
        var symbols = new List<Symbol>(text.Length);
        for (int start = 0; start < text.Length;)
        {
            string? userDefined = _userDefined.FirstOrDefault(p => text.AsSpan(start).StartsWith(p, StringComparison.Ordinal));
            int length = userDefined?.Length ?? (char.IsHighSurrogate(text[start]) && start + 1 < text.Length ? 2 : 1);
            symbols.Add(new Symbol { Start = start, Length = length, Prev = symbols.Count - 1, Next = symbols.Count + 1, Frozen = userDefined is not null });
            start += length;
        }
        var array = symbols.ToArray();
        if (array.Length > 0)
        {
            array[^1].Next = -1;
        }
        return array;
    }

    private struct Symbol
    {
        public int Start;
        public int Length; // 0 once merged into its left neighbour
        public int Prev;
        public int Next;
        public bool Frozen;
    }

    /// <summary>Highest score first; equal scores: leftmost pair first (SentencePiece's SymbolPairComparator).</summary>
    private sealed class PairOrder : IComparer<(float Score, int Left)>
    {
        public static readonly PairOrder Instance = new();

        public int Compare((float Score, int Left) x, (float Score, int Left) y) =>
            x.Score != y.Score ? y.Score.CompareTo(x.Score) : x.Left.CompareTo(y.Left);
    }
}

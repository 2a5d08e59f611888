namespace VicunaBatch.Inference.Grammar;

/// <summary>
/// A vocabulary's token texts (UTF-8 bytes) as a trie, built once per model: a token is allowed when the automaton
/// can read its bytes, and tokens sharing a prefix share the steps that read it, so a mask costs one walk of the part
/// of the trie the grammar leaves open. Inside a string the walk skips the tokens that are plain content
/// (TokenTrie.StringContent.cs).
/// </summary>
public sealed partial class TokenTrie
{
    // node 0 is the root; a node's children are _childByte/_childNode[_childStart[n] .. _childStart[n + 1])
    private readonly int[] _childStart;
    private readonly byte[] _childByte;
    private readonly int[] _childNode;
    // the tokens whose text ends at node n: _tokens[_tokenStart[n] .. _tokenStart[n + 1])
    private readonly int[] _tokenStart;
    private readonly int[] _tokens;

    /// <param name="tokenBytes">Per token id its text, or null for a token never written (control, unknown).</param>
    public TokenTrie(IReadOnlyList<byte[]?> tokenBytes)
    {
        var children = new List<SortedDictionary<byte, int>> { new() };
        var ends = new List<List<int>> { new() };
        for (var id = 0; id < tokenBytes.Count; id++)
        {
            if (tokenBytes[id] is not { Length: > 0 } text) continue;
            var node = 0;
            foreach (var b in text)
            {
                if (!children[node].TryGetValue(b, out var child))
                {
                    child = children.Count;
                    children[node][b] = child;
                    children.Add(new());
                    ends.Add(new());
                }
                node = child;
            }
            ends[node].Add(id);
        }
        NumNodes = children.Count;
        VocabSize = tokenBytes.Count;
        _childStart = new int[NumNodes + 1];
        _tokenStart = new int[NumNodes + 1];
        for (var n = 0; n < NumNodes; n++)
        {
            _childStart[n + 1] = _childStart[n] + children[n].Count;
            _tokenStart[n + 1] = _tokenStart[n] + ends[n].Count;
        }
        _childByte = children.SelectMany(c => c.Keys).ToArray();
        _childNode = children.SelectMany(c => c.Values).ToArray();
        _tokens = ends.SelectMany(e => e).ToArray();
        (_plainTokens, _leadsOut) = (new ulong[NumContentStates][], new ulong[NumContentStates][]);
        IndexContent();
    }

    public int NumNodes { get; }

    /// <summary>Token ids the trie was built over: [0, VocabSize).</summary>
    public int VocabSize { get; }

    /// <summary>Sets in <paramref name="allowed"/> (one bit per token id) every token whose whole text <paramref name="matcher"/> can read next.</summary>
    public void Allow(JsonMatcher matcher, Span<ulong> allowed)
    {
        var scratch = new List<Frame>();
        var frames = matcher.Frames;
        List<Frame>? others = null;
        foreach (var frame in frames)
        {
            // an open object's key reads content as its string does (only its closing quote checks the key)
            if ((frame as StringFrame ?? (frame as OpenKeyFrame)?.Inner) is { } inString && ContentState(inString) is var state && state >= 0)
            {
                AllowInContent(frame, state, allowed, scratch);
            }
            else
            {
                (others ??= []).Add(frame);
            }
        }
        if (others is not null) Visit(0, others.Count == frames.Length ? frames : [.. others], allowed, scratch);
    }

    /// <summary>The same bits as <see cref="Allow"/>, by a walk of the whole open trie (the reference the fast path is tested against).</summary>
    internal void AllowByFullWalk(JsonMatcher matcher, Span<ulong> allowed) => Visit(0, matcher.Frames, allowed, new List<Frame>());

    private void Visit(int node, Frame[] frames, Span<ulong> allowed, List<Frame> scratch)
    {
        for (var i = _tokenStart[node]; i < _tokenStart[node + 1]; i++)
        {
            var id = _tokens[i];
            allowed[id >> 6] |= 1UL << (id & 63);
        }
        for (var c = _childStart[node]; c < _childStart[node + 1]; c++)
        {
            var next = JsonMatcher.Step(frames, _childByte[c], scratch);
            if (next.Length > 0) Visit(_childNode[c], next, allowed, scratch);
        }
    }
}

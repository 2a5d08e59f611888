using System.Numerics.Tensors;

namespace VicunaBatch.Inference.Grammar;

/// <summary>
/// The mask inside a string, without walking the whole trie. A string's content states (plain, or partway through a
/// multi-byte UTF-8 character) do not depend on what the string belongs to, so per content state the trie knows, once
/// per vocabulary, the tokens that stay content from start to end (always allowed there: no quote, no backslash, no
/// control byte, UTF-8 continued legally) and the nodes below which some path of content bytes reaches a quote or a
/// backslash. A mask in a string is that plain set plus a walk down only those nodes, the real matcher stepping
/// past the quote or backslash; every other token either is plain or fails inside the string.
/// </summary>
public sealed partial class TokenTrie
{
    /// <summary>In <see cref="ContentNext"/>: the byte ends the content (a quote, a backslash), or cannot be read at all.</summary>
    private const int Exit = -1, Invalid = -2;

    /// <summary>The content states, each a <see cref="StringFrame"/> of a stand-in parent: plain first, then the UTF-8 ones.</summary>
    private static readonly StringFrame[] ContentStates;

    private static readonly Dictionary<StringFrame, int> ContentIndex;

    /// <summary>[state × 256 + byte]: the content state after the byte, <see cref="Exit"/> or <see cref="Invalid"/>.</summary>
    private static readonly int[] ContentNext;

    private static int NumContentStates => ContentStates.Length;

    // per content state: [ceil(VocabSize / 64)] bits of the plain tokens, [ceil(NumNodes / 64)] bits of the nodes worth walking
    private readonly ulong[][] _plainTokens;
    private readonly ulong[][] _leadsOut;

    static TokenTrie() => (ContentStates, ContentIndex, ContentNext) = ContentAutomaton();

    /// <summary>Every content state reachable from a plain one, found by stepping <see cref="StringFrame"/> itself over every byte, so the two cannot disagree.</summary>
    private static (StringFrame[], Dictionary<StringFrame, int>, int[]) ContentAutomaton()
    {
        var states = new List<StringFrame> { new(DoneFrame.Instance, StringPhase.Plain, 0, 0, 0) };
        var index = new Dictionary<StringFrame, int> { [states[0]] = 0 };
        var next = new List<int>();
        var scratch = new List<Frame>();
        for (var s = 0; s < states.Count; s++)
        {
            for (var b = 0; b < 256; b++)
            {
                scratch.Clear();
                states[s].Step((byte)b, scratch);
                if (scratch.Count == 0) next.Add(Invalid);
                else if (scratch is [StringFrame { Phase: StringPhase.Plain or StringPhase.Utf8 } f] && ReferenceEquals(f.Parent, DoneFrame.Instance))
                {
                    if (!index.TryGetValue(f, out var id))
                    {
                        id = index[f] = states.Count;
                        states.Add(f);
                    }
                    next.Add(id);
                }
                else next.Add(Exit);
            }
        }
        return ([.. states], index, [.. next]);
    }

    /// <summary>The content state of <paramref name="frame"/>, or −1 after a backslash (an escape is not content).</summary>
    private static int ContentState(StringFrame frame) =>
        ContentIndex.TryGetValue(frame with { Parent = DoneFrame.Instance }, out var state) ? state : -1;

    /// <summary>Fills <see cref="_plainTokens"/> and <see cref="_leadsOut"/> for every content state.</summary>
    private void IndexContent()
    {
        for (var state = 0; state < NumContentStates; state++)
        {
            _plainTokens[state] = new ulong[(VocabSize + 63) / 64];
            _leadsOut[state] = new ulong[(NumNodes + 63) / 64];
            MarkPlain(0, state, _plainTokens[state]);
        }
        // a child is always numbered after its parent, so going down from the last node sees every child first
        for (var node = NumNodes - 1; node >= 0; node--)
        {
            for (var state = 0; state < NumContentStates; state++)
            {
                if (LeadsOutBelow(node, state)) _leadsOut[state][node >> 6] |= 1UL << (node & 63);
            }
        }
    }

    /// <summary>Sets the tokens at and below <paramref name="node"/> whose bytes from there on are content in <paramref name="state"/>.</summary>
    private void MarkPlain(int node, int state, ulong[] plain)
    {
        for (var i = _tokenStart[node]; i < _tokenStart[node + 1]; i++)
        {
            var id = _tokens[i];
            plain[id >> 6] |= 1UL << (id & 63);
        }
        for (var c = _childStart[node]; c < _childStart[node + 1]; c++)
        {
            var next = ContentNext[state * 256 + _childByte[c]];
            if (next >= 0) MarkPlain(_childNode[c], next, plain);
        }
    }

    /// <summary>From <paramref name="node"/> in <paramref name="state"/>, content bytes reach a byte that ends the content.</summary>
    private bool LeadsOutBelow(int node, int state)
    {
        for (var c = _childStart[node]; c < _childStart[node + 1]; c++)
        {
            var next = ContentNext[state * 256 + _childByte[c]];
            if (next == Exit || next >= 0 && LeadsOut(next, _childNode[c])) return true;
        }
        return false;
    }

    private bool LeadsOut(int state, int node) => (_leadsOut[state][node >> 6] >> (node & 63) & 1) != 0;

    /// <summary>Adds the tokens <paramref name="frame"/> (a string, or a key, in content state <paramref name="state"/>) can read: the plain ones, then a walk to the others.</summary>
    private void AllowInContent(Frame frame, int state, Span<ulong> allowed, List<Frame> scratch)
    {
        var plain = _plainTokens[state];
        var words = allowed[..plain.Length];
        TensorPrimitives.BitwiseOr(words, plain, words);
        if (LeadsOut(state, 0)) VisitContent(0, [frame], state, allowed, scratch);
    }

    /// <summary>
    /// Below <paramref name="node"/>, reached by content bytes (its tokens are plain, so already set): only the children
    /// that end the content or lead to such a byte; past the end of the content, the ordinary walk.
    /// </summary>
    private void VisitContent(int node, Frame[] frames, int state, Span<ulong> allowed, List<Frame> scratch)
    {
        for (var c = _childStart[node]; c < _childStart[node + 1]; c++)
        {
            var b = _childByte[c];
            var child = _childNode[c];
            var next = ContentNext[state * 256 + b];
            if (next == Invalid || next >= 0 && !LeadsOut(next, child)) continue;
            var nextFrames = JsonMatcher.Step(frames, b, scratch);
            if (nextFrames.Length == 0) continue;
            if (next == Exit) Visit(child, nextFrames, allowed, scratch);
            else VisitContent(child, nextFrames, next, allowed, scratch);
        }
    }
}

namespace VicunaBatch.Inference.Grammar;

/// <summary>
/// The JSON texts a constrained request may produce: one value of a <see cref="JsonSchemaNode"/>, compiled once and
/// shared by every request that uses it. Each request reads it with its own <see cref="JsonMatcher"/>.
/// </summary>
public sealed class JsonGrammar
{
    private readonly GrammarNode _root;

    private JsonGrammar(GrammarNode root) => _root = root;

    /// <summary>Any JSON object (<c>response_format: {"type": "json_object"}</c>).</summary>
    public static JsonGrammar AnyObject { get; } = new(ObjectNode.Open(GrammarNode.AnyValue));

    /// <exception cref="ArgumentException">The schema cannot be matched (an empty enum or anyOf, a required name that is no property, over 64 members).</exception>
    public static JsonGrammar ForSchema(JsonSchemaNode schema) => new(GrammarNode.Compile(schema));

    /// <summary>The automaton at the start of the text: before the value, whitespace allowed.</summary>
    public JsonMatcher Start() => new([new ValueFrame(_root, DoneFrame.Instance, 0)]);
}

/// <summary>
/// One request's place in a <see cref="JsonGrammar"/>: the set of automaton states the bytes so far can be in (more
/// than one where an anyOf, an enum or a number's end is not yet decided). Not thread-safe.
/// </summary>
public sealed class JsonMatcher
{
    private Frame[] _frames;

    internal JsonMatcher(Frame[] frames) => _frames = frames;

    internal Frame[] Frames => _frames;

    /// <summary>The text so far is a whole value: end of sequence is allowed (and, when nothing can follow, the only choice).</summary>
    public bool CanEnd => _frames.Any(f => f.CanEnd);

    /// <summary>Reads <paramref name="bytes"/>; false, and no change, when they cannot continue the text.</summary>
    public bool TryAdvance(ReadOnlySpan<byte> bytes)
    {
        var frames = _frames;
        var next = new List<Frame>();
        foreach (var b in bytes)
        {
            frames = Step(frames, b, next);
            if (frames.Length == 0) return false;
        }
        _frames = frames;
        return true;
    }

    /// <summary>The states after <paramref name="b"/>, duplicates dropped; the same array when one state reads it unchanged.</summary>
    internal static Frame[] Step(Frame[] frames, byte b, List<Frame> scratch)
    {
        scratch.Clear();
        foreach (var frame in frames) frame.Step(b, scratch);
        if (scratch.Count == 1 && frames.Length == 1 && ReferenceEquals(scratch[0], frames[0])) return frames;
        if (scratch.Count <= 1) return [.. scratch];
        return [.. new HashSet<Frame>(scratch)];
    }
}

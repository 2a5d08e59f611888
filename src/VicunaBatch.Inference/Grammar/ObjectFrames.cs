namespace VicunaBatch.Inference.Grammar;

internal enum ObjectPhase { AfterOpen, AfterKey, AfterValue, AfterComma }

/// <summary>
/// Inside an object, between its tokens. <paramref name="Used"/>: the properties written (bits of
/// <see cref="ObjectNode.Names"/>); <paramref name="Pending"/>: after a key, the schema of its value.
/// </summary>
internal sealed record ObjectFrame(ObjectNode Node, Frame Parent, ObjectPhase Phase, ulong Used, int Ws, GrammarNode? Pending) : Frame
{
    /// <summary>An open object's keys written so far, as their raw bytes between the quotes, each followed by a NUL
    /// (a JSON string holds no raw NUL): a key is not written twice.</summary>
    public string Keys { get; init; } = "";

    public override void Step(byte b, List<Frame> next)
    {
        if (IsWhitespace(b))
        {
            if (Ws < MaxWhitespace) next.Add(this with { Ws = Ws + 1 });
            return;
        }
        switch (Phase)
        {
            case ObjectPhase.AfterOpen when b == '}' && MayClose:
            case ObjectPhase.AfterValue when b == '}' && MayClose:
                next.Add(Parent);
                break;
            case ObjectPhase.AfterOpen or ObjectPhase.AfterComma when b == '"':
                StartKey(next);
                break;
            case ObjectPhase.AfterKey when b == ':':
                next.Add(new ValueFrame(Pending!, this with { Phase = ObjectPhase.AfterValue, Ws = 0, Pending = null }, 0));
                break;
            case ObjectPhase.AfterValue when b == ',' && MayAddKey:
                next.Add(this with { Phase = ObjectPhase.AfterComma, Ws = 0 });
                break;
        }
    }

    private bool MayClose => (Node.RequiredMask & ~Used) == 0;

    /// <summary>A key can follow: the object is open, or some property is not written yet.</summary>
    private bool MayAddKey => Node.IsOpen || (Node.AllNames & ~Used) != 0;

    private void StartKey(List<Frame> next)
    {
        if (Node.IsOpen)
        {
            next.Add(new OpenKeyFrame(this with { Ws = 0 }, OpenKeyFrame.Content, ""));
        }
        else if ((Node.AllNames & ~Used) != 0)
        {
            next.Add(new KeyFrame(this with { Ws = 0 }, Node.AllNames & ~Used, 0));
        }
    }

    /// <summary>Whether the open object already has the key of these raw bytes.</summary>
    public bool HasKey(string raw) => ("\0" + Keys).Contains("\0" + raw + "\0", StringComparison.Ordinal);

    /// <summary>An open object's key of these raw bytes is read: its value (any the schema allows) comes next.</summary>
    public ObjectFrame AfterOpenKey(string raw) =>
        this with { Phase = ObjectPhase.AfterKey, Ws = 0, Pending = Node.Additional, Keys = Keys + raw + "\0" };

    /// <summary>The key <paramref name="index"/> is read: its value comes next.</summary>
    public ObjectFrame AfterKey(int index) =>
        this with { Phase = ObjectPhase.AfterKey, Used = Used | 1UL << index, Ws = 0, Pending = Node.Values[index] };
}

/// <summary>A key of a closed object, after its opening quote: <paramref name="Alive"/> the unwritten names it may still be.</summary>
internal sealed record KeyFrame(ObjectFrame Owner, ulong Alive, int Position) : Frame
{
    public override void Step(byte b, List<Frame> next)
    {
        var names = Owner.Node.Names;
        var alive = 0UL;
        for (var i = 0; i < names.Length; i++)
        {
            if ((Alive >> i & 1) == 0) continue;
            if (names[i].Length > Position && names[i][Position] == b) alive |= 1UL << i;
            else if (names[i].Length == Position && b == '"') next.Add(Owner.AfterKey(i));
        }
        if (alive != 0) next.Add(this with { Alive = alive, Position = Position + 1 });
    }
}

/// <summary>
/// A key of an open object, after its opening quote: <paramref name="Inner"/> reads it as any string while
/// <paramref name="Raw"/> keeps its bytes, and at its closing quote a key the object already has is refused.
/// Keys equal only once unescaped ("a" and "\u0061") are not caught.
/// </summary>
internal sealed record OpenKeyFrame(ObjectFrame Owner, StringFrame Inner, string Raw) : Frame
{
    /// <summary>The string state a key starts in; its parent marks the closing quote.</summary>
    public static readonly StringFrame Content = new(KeyEnd.Instance, StringPhase.Plain, 0, 0, 0);

    public override void Step(byte b, List<Frame> next)
    {
        var first = next.Count;
        Inner.Step(b, next);
        for (var i = next.Count - 1; i >= first; i--)
        {
            if (next[i] is not KeyEnd) next[i] = this with { Inner = (StringFrame)next[i], Raw = Raw + (char)b };
            else if (Owner.HasKey(Raw)) next.RemoveAt(i);
            else next[i] = Owner.AfterOpenKey(Raw);
        }
    }

    /// <summary>The parent of a key's string: reached at its closing quote, and never stepped.</summary>
    private sealed record KeyEnd : Frame
    {
        public static readonly KeyEnd Instance = new();

        public override void Step(byte b, List<Frame> next) => throw new InvalidOperationException("a key's end is not read past");
    }
}

internal enum StringPhase { Plain, Escape, Hex, Utf8 }

/// <summary>
/// Inside a string after its opening quote. Escape: after a backslash; Hex: <paramref name="Count"/> digits of a
/// <c>\u</c> read (<paramref name="Low"/> 1 when the first was d, so no surrogate follows); Utf8: <paramref name="Count"/>
/// continuation bytes to come, the next in [<paramref name="Low"/>, <paramref name="High"/>] (well-formed UTF-8 only).
/// </summary>
internal sealed record StringFrame(Frame Parent, StringPhase Phase, int Count, byte Low, byte High) : Frame
{
    public override void Step(byte b, List<Frame> next)
    {
        switch (Phase)
        {
            case StringPhase.Plain:
                StepPlain(b, next);
                break;
            case StringPhase.Escape:
                if (b == 'u') next.Add(this with { Phase = StringPhase.Hex, Count = 0, Low = 0 });
                else if (b is (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t') next.Add(Plain);
                break;
            case StringPhase.Hex:
                StepHex(b, next);
                break;
            case StringPhase.Utf8 when b >= Low && b <= High:
                next.Add(Count == 1 ? Plain : this with { Count = Count - 1, Low = 0x80, High = 0xBF });
                break;
        }
    }

    private StringFrame Plain => this with { Phase = StringPhase.Plain, Count = 0, Low = 0, High = 0 };

    private void StepPlain(byte b, List<Frame> next)
    {
        if (b == '"') next.Add(Parent);
        else if (b == '\\') next.Add(this with { Phase = StringPhase.Escape });
        else if (b is >= 0x20 and < 0x80) next.Add(this);
        else if (b >= 0x80 && Utf8Lead(b) is { } lead) next.Add(this with { Phase = StringPhase.Utf8, Count = lead.Count, Low = lead.Low, High = lead.High });
    }

    /// <summary>Continuation bytes after a lead byte, and the range of the first (RFC 3629's table).</summary>
    private static (int Count, byte Low, byte High)? Utf8Lead(byte b) => b switch
    {
        >= 0xC2 and <= 0xDF => (1, 0x80, 0xBF),
        0xE0 => (2, 0xA0, 0xBF),
        0xED => (2, 0x80, 0x9F),
        >= 0xE1 and <= 0xEF => (2, 0x80, 0xBF),
        0xF0 => (3, 0x90, 0xBF),
        >= 0xF1 and <= 0xF3 => (3, 0x80, 0xBF),
        0xF4 => (3, 0x80, 0x8F),
        _ => null,
    };

    private void StepHex(byte b, List<Frame> next)
    {
        var isHex = b is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f' or >= (byte)'A' and <= (byte)'F';
        if (!isHex) return;
        // \uD800–\uDFFF would be half a surrogate pair, which parsers refuse alone
        if (Count == 1 && Low == 1 && !(b is >= (byte)'0' and <= (byte)'7')) return;
        if (Count == 3) next.Add(Plain);
        else next.Add(this with { Count = Count + 1, Low = Count == 0 && b is (byte)'d' or (byte)'D' ? (byte)1 : Low });
    }
}

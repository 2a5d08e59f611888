namespace VicunaBatch.Inference.Grammar;

/// <summary>
/// One state of the JSON pushdown automaton over UTF-8 bytes: the innermost thing being read, with
/// its <c>Parent</c> the state to go on in once it is complete (the stack as a linked list). Immutable records,
/// so states compare by value and a set of them drops duplicates.
/// </summary>
internal abstract record Frame
{
    /// <summary>Longest run of whitespace between two tokens of the JSON text.</summary>
    public const int MaxWhitespace = 16;

    /// <summary>Adds to <paramref name="next"/> every state reached by reading <paramref name="b"/> (none: not legal here).</summary>
    public abstract void Step(byte b, List<Frame> next);

    /// <summary>The text may end here: the whole value is complete.</summary>
    public virtual bool CanEnd => false;

    protected static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t';

    /// <summary>Starts a value of <paramref name="node"/> with its first byte <paramref name="b"/> (not whitespace).</summary>
    public static void StartValue(GrammarNode node, Frame parent, byte b, List<Frame> next)
    {
        switch (node)
        {
            case AnyOfNode anyOf:
                foreach (var option in anyOf.Options) StartValue(option, parent, b, next);
                break;
            case AnyNode any:
                foreach (var kind in any.Kinds) StartValue(kind, parent, b, next);
                break;
            case ObjectNode o when b == '{':
                next.Add(new ObjectFrame(o, parent, ObjectPhase.AfterOpen, 0, 0, null));
                break;
            case ArrayNode a when b == '[':
                next.Add(new ArrayFrame(a, parent, ArrayPhase.AfterOpen, 0));
                break;
            case StringNode when b == '"':
                next.Add(new StringFrame(parent, StringPhase.Plain, 0, 0, 0));
                break;
            case NumberNode n:
                NumberFrame.Start(n.IsInteger, parent, b, next);
                break;
            case LiteralNode l:
                new LiteralFrame(l, parent, l.All, 0).Step(b, next);
                break;
        }
    }
}

/// <summary>The value is complete and nothing may follow (no trailing whitespace, so the end is forced).</summary>
internal sealed record DoneFrame() : Frame
{
    public static readonly DoneFrame Instance = new();

    public override void Step(byte b, List<Frame> next) { }

    public override bool CanEnd => true;
}

/// <summary>Before a value of <paramref name="Node"/>, after <paramref name="Ws"/> whitespace bytes.</summary>
internal sealed record ValueFrame(GrammarNode Node, Frame Parent, int Ws) : Frame
{
    public override void Step(byte b, List<Frame> next)
    {
        if (IsWhitespace(b))
        {
            if (Ws < MaxWhitespace) next.Add(this with { Ws = Ws + 1 });
            return;
        }
        StartValue(Node, Parent, b, next);
    }
}

internal enum ArrayPhase { AfterOpen, AfterValue }

internal sealed record ArrayFrame(ArrayNode Node, Frame Parent, ArrayPhase Phase, int Ws) : Frame
{
    public override void Step(byte b, List<Frame> next)
    {
        if (IsWhitespace(b))
        {
            if (Ws < MaxWhitespace) next.Add(this with { Ws = Ws + 1 });
        }
        else if (b == ']')
        {
            next.Add(Parent);
        }
        else if (Phase == ArrayPhase.AfterValue)
        {
            if (b == ',') next.Add(new ValueFrame(Node.Items, this with { Ws = 0 }, 0));
        }
        else
        {
            StartValue(Node.Items, this with { Phase = ArrayPhase.AfterValue, Ws = 0 }, b, next);
        }
    }
}

/// <summary>A number: <c>-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?</c>, the fraction and exponent only when not an integer.</summary>
internal sealed record NumberFrame(Frame Parent, bool Integer, NumberPhase Phase, int Length) : Frame
{
    /// <summary>Longest number written, in bytes.</summary>
    public const int MaxLength = 24;

    public static void Start(bool integer, Frame parent, byte b, List<Frame> next)
    {
        var phase = b switch { (byte)'-' => NumberPhase.Sign, (byte)'0' => NumberPhase.Zero, >= (byte)'1' and <= (byte)'9' => NumberPhase.Int, _ => NumberPhase.None };
        if (phase != NumberPhase.None) next.Add(new NumberFrame(parent, integer, phase, 1));
    }

    public override bool CanEnd => IsComplete && Parent.CanEnd;

    private bool IsComplete => Phase is NumberPhase.Zero or NumberPhase.Int or NumberPhase.Fraction or NumberPhase.ExponentDigits;

    public override void Step(byte b, List<Frame> next)
    {
        var phase = Next(b);
        if (phase != NumberPhase.None && Length < MaxLength)
        {
            next.Add(this with { Phase = phase, Length = Length + 1 });
        }
        if (IsComplete && !IsDigitOrMark(b))
        {
            Parent.Step(b, next);
        }
    }

    private static bool IsDigitOrMark(byte b) => b is >= (byte)'0' and <= (byte)'9' or (byte)'.' or (byte)'e' or (byte)'E' or (byte)'+' or (byte)'-';

    private NumberPhase Next(byte b)
    {
        var digit = b is >= (byte)'0' and <= (byte)'9';
        return Phase switch
        {
            NumberPhase.Sign => b == '0' ? NumberPhase.Zero : digit ? NumberPhase.Int : NumberPhase.None,
            NumberPhase.Int when digit => NumberPhase.Int,
            NumberPhase.Zero or NumberPhase.Int when !Integer && b == '.' => NumberPhase.Dot,
            NumberPhase.Zero or NumberPhase.Int or NumberPhase.Fraction when !Integer && b is (byte)'e' or (byte)'E' => NumberPhase.Exponent,
            NumberPhase.Dot or NumberPhase.Fraction when digit => NumberPhase.Fraction,
            NumberPhase.Exponent when b is (byte)'+' or (byte)'-' => NumberPhase.ExponentSign,
            NumberPhase.Exponent or NumberPhase.ExponentSign or NumberPhase.ExponentDigits when digit => NumberPhase.ExponentDigits,
            _ => NumberPhase.None,
        };
    }
}

internal enum NumberPhase { None, Sign, Zero, Int, Dot, Fraction, Exponent, ExponentSign, ExponentDigits }

/// <summary>Inside one of a literal node's texts: <paramref name="Alive"/> those that match the <paramref name="Position"/> bytes read.</summary>
internal sealed record LiteralFrame(LiteralNode Node, Frame Parent, ulong Alive, int Position) : Frame
{
    public override bool CanEnd => IsComplete && Parent.CanEnd;

    /// <summary>Some alive text is read whole.</summary>
    private bool IsComplete
    {
        get
        {
            for (var i = 0; i < Node.Texts.Length; i++)
            {
                if ((Alive >> i & 1) != 0 && Node.Texts[i].Length == Position) return true;
            }
            return false;
        }
    }

    public override void Step(byte b, List<Frame> next)
    {
        var alive = 0UL;
        for (var i = 0; i < Node.Texts.Length; i++)
        {
            var text = Node.Texts[i];
            if ((Alive >> i & 1) != 0 && text.Length > Position && text[Position] == b) alive |= 1UL << i;
        }
        if (alive != 0) next.Add(this with { Alive = alive, Position = Position + 1 });
        if (IsComplete) Parent.Step(b, next);
    }
}

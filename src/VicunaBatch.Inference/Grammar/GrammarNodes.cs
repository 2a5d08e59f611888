using System.Text;

namespace VicunaBatch.Inference.Grammar;

/// <summary>
/// A <see cref="JsonSchemaNode"/> compiled for the automaton: names and literals as the UTF-8 bytes they are written
/// with, sets of at most 64 as bit masks. Frames refer to these by reference, so equal frames compare cheaply.
/// </summary>
internal abstract class GrammarNode
{
    /// <summary>Most properties of one object and values of one enum (each is a bit of a <c>ulong</c>).</summary>
    public const int MaxMembers = 64;

    public static readonly GrammarNode AnyValue = new AnyNode();

    public static GrammarNode Compile(JsonSchemaNode schema) => schema switch
    {
        AnyValueSchema => AnyValue,
        ObjectSchema o => ObjectNode.Of(o),
        ArraySchema a => new ArrayNode(Compile(a.Items)),
        StringSchema => StringNode.Instance,
        NumberSchema n => n.Integer ? NumberNode.Integer : NumberNode.Real,
        BooleanSchema => LiteralNode.Booleans,
        NullSchema => LiteralNode.Null,
        LiteralSchema l => new LiteralNode(l.Texts.Select(t => Encoding.UTF8.GetBytes(t)).ToArray()),
        AnyOfSchema u when u.Options.Length > 0 => new AnyOfNode(u.Options.Select(Compile).ToArray()),
        _ => throw new ArgumentException($"the schema node {schema} has nothing to match", nameof(schema)),
    };
}

internal sealed class AnyNode : GrammarNode
{
    private GrammarNode[]? _kinds;

    /// <summary>What a value may be: any object, any array, a string, a number, true, false or null.</summary>
    public GrammarNode[] Kinds => _kinds ??= [ObjectNode.Open(this), new ArrayNode(this), StringNode.Instance, NumberNode.Real, LiteralNode.Keywords];
}

internal sealed class StringNode : GrammarNode
{
    public static readonly StringNode Instance = new();
}

internal sealed class NumberNode(bool integer) : GrammarNode
{
    public static readonly NumberNode Integer = new(true), Real = new(false);

    public bool IsInteger { get; } = integer;
}

internal sealed class ArrayNode(GrammarNode items) : GrammarNode
{
    public GrammarNode Items { get; } = items;
}

internal sealed class AnyOfNode(GrammarNode[] options) : GrammarNode
{
    public GrammarNode[] Options { get; } = options;
}

/// <summary>One of <see cref="Texts"/>, byte for byte: enum, const, true/false, null.</summary>
internal sealed class LiteralNode : GrammarNode
{
    public static readonly LiteralNode Booleans = new([.. "true"u8], [.. "false"u8]), Null = new([.. "null"u8]);

    /// <summary>The literals <see cref="AnyNode"/> starts with t, f or n.</summary>
    public static readonly LiteralNode Keywords = new([.. "true"u8], [.. "false"u8], [.. "null"u8]);

    public LiteralNode(params byte[][] texts)
    {
        if (texts.Length is 0 or > MaxMembers)
            throw new ArgumentException($"an enum needs 1 to {MaxMembers} values, got {texts.Length}", nameof(texts));
        Texts = texts;
        All = texts.Length == 64 ? ulong.MaxValue : (1UL << texts.Length) - 1;
    }

    public byte[][] Texts { get; }

    public ulong All { get; }
}

/// <summary>
/// An object. With <see cref="Names"/>: only those keys, each at most once, <see cref="RequiredMask"/> before the end
/// (extra keys are never written, which every schema allows unless it requires more). Without: any keys, their
/// values <see cref="Additional"/>; <see cref="Additional"/> null and no names: only <c>{}</c>.
/// </summary>
internal sealed class ObjectNode : GrammarNode
{
    private ObjectNode(byte[][] names, GrammarNode[] values, ulong requiredMask, GrammarNode? additional)
    {
        Names = names;
        Values = values;
        RequiredMask = requiredMask;
        Additional = names.Length == 0 ? additional : null;
        AllNames = names.Length == 64 ? ulong.MaxValue : (1UL << names.Length) - 1;
    }

    /// <summary>Keys as written between the quotes (JSON-escaped UTF-8).</summary>
    public byte[][] Names { get; }

    public GrammarNode[] Values { get; }

    public ulong RequiredMask { get; }

    public ulong AllNames { get; }

    public GrammarNode? Additional { get; }

    public bool IsOpen => Additional is not null;

    /// <summary>Any keys, each value of <paramref name="values"/>.</summary>
    public static ObjectNode Open(GrammarNode values) => new([], [], 0, values);

    public static ObjectNode Of(ObjectSchema schema)
    {
        var properties = schema.Properties;
        if (properties.Length > MaxMembers)
            throw new ArgumentException($"an object may have at most {MaxMembers} properties, got {properties.Length}", nameof(schema));
        var required = 0UL;
        foreach (var name in schema.Required)
        {
            var index = properties.Select(p => p.Key).ToList().IndexOf(name);
            if (index < 0) throw new ArgumentException($"required property \"{name}\" is not among the properties", nameof(schema));
            required |= 1UL << index;
        }
        return new ObjectNode(
            properties.Select(p => EscapedKey(p.Key)).ToArray(), properties.Select(p => Compile(p.Value)).ToArray(),
            required, schema.Additional is null ? null : Compile(schema.Additional));
    }

    /// <summary>A key's bytes inside its quotes: the quote, backslash and control characters escaped, the rest UTF-8.</summary>
    private static byte[] EscapedKey(string name)
    {
        var text = new StringBuilder();
        foreach (var c in name)
        {
            text.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                < ' ' => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }
}

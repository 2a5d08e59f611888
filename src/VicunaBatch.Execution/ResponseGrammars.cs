using VicunaBatch.Core.Formats;
using VicunaBatch.Inference.Grammar;

namespace VicunaBatch.Execution;

/// <summary>A request's <c>response_format</c> as the engine's JSON grammar: the schema subset Core read, node for node.</summary>
internal static class ResponseGrammars
{
    /// <summary>The last format compiled and its grammar: a batch's lines mostly share one format.</summary>
    private sealed record Compiled(ResponseFormat Format, JsonGrammar? Grammar);

    private static Compiled? _last;

    /// <summary>The grammar the output must follow; null for free text. Compiled once for a run of equal formats.</summary>
    /// <exception cref="ArgumentException">The schema cannot be matched (Core's reader refuses these first).</exception>
    public static JsonGrammar? Of(ResponseFormat? format)
    {
        if (format is null) return null;
        if (_last is { } last && last.Format.Equals(format)) return last.Grammar;
        var grammar = Compile(format);
        _last = new Compiled(format, grammar);
        return grammar;
    }

    private static JsonGrammar? Compile(ResponseFormat format) => format.Kind switch
    {
        ResponseFormatKind.JsonObject => JsonGrammar.AnyObject,
        ResponseFormatKind.JsonSchema => JsonGrammar.ForSchema(ToNode(format.Schema ?? new ResponseSchema.Any())),
        _ => null,
    };

    private static JsonSchemaNode ToNode(ResponseSchema schema) => schema switch
    {
        ResponseSchema.Any => JsonSchemaNode.Any,
        ResponseSchema.Object o => new ObjectSchema(
            [.. o.Properties.Select(p => KeyValuePair.Create(p.Key, ToNode(p.Value)))], [.. o.Required],
            o.Additional is null ? null : ToNode(o.Additional)),
        ResponseSchema.Array a => new ArraySchema(ToNode(a.Items)),
        ResponseSchema.String => new StringSchema(),
        ResponseSchema.Number n => new NumberSchema(n.Integer),
        ResponseSchema.Boolean => new BooleanSchema(),
        ResponseSchema.Null => new NullSchema(),
        ResponseSchema.Literal l => new LiteralSchema([.. l.Texts]),
        ResponseSchema.AnyOf u => new AnyOfSchema([.. u.Options.Select(ToNode)]),
        _ => throw new ArgumentException($"no grammar for the schema node {schema}", nameof(schema)),
    };
}

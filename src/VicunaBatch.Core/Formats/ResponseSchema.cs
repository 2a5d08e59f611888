using System.Text;
using System.Text.Json;

namespace VicunaBatch.Core.Formats;

/// <summary>
/// A <c>response_format</c> JSON schema, read into the subset the engine enforces exactly: objects (properties,
/// required, additionalProperties), arrays (items), string, number, integer, boolean, null, enum, const, anyOf (and a
/// <c>type</c> array). An object with properties is written with only those keys. Anything else is refused, naming
/// the keyword: a schema is never loosened.
/// </summary>
public abstract record ResponseSchema
{
    /// <summary>Most properties of one object, values of one enum, options of one anyOf.</summary>
    public const int MaxMembers = 64;

    /// <summary>Deepest nesting of schemas.</summary>
    public const int MaxDepth = 32;

    public sealed record Any : ResponseSchema;

    /// <summary>Additional null: no keys but the properties; else extra keys' values (only when there are no properties).</summary>
    public sealed record Object(IReadOnlyList<KeyValuePair<string, ResponseSchema>> Properties, IReadOnlyList<string> Required, ResponseSchema? Additional) : ResponseSchema;

    public sealed record Array(ResponseSchema Items) : ResponseSchema;

    public sealed record String : ResponseSchema;

    public sealed record Number(bool Integer) : ResponseSchema;

    public sealed record Boolean : ResponseSchema;

    public sealed record Null : ResponseSchema;

    /// <summary><c>enum</c> or <c>const</c>: the values as compact JSON texts.</summary>
    public sealed record Literal(IReadOnlyList<string> Texts) : ResponseSchema;

    public sealed record AnyOf(IReadOnlyList<ResponseSchema> Options) : ResponseSchema;

    /// <summary>Keywords that only describe: read past.</summary>
    private static readonly HashSet<string> Annotations = ["title", "description", "$schema", "$id", "$comment", "default", "examples"];

    private static readonly HashSet<string> Supported =
        ["type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", .. Annotations];

    private static readonly string[] Types = ["object", "array", "string", "number", "integer", "boolean", "null"];

    /// <exception cref="LineRejection">Outside the subset (<see cref="LineErrorCode.UnsupportedParameter"/>) or malformed.</exception>
    internal static ResponseSchema Read(JsonElement schema, string path) => Read(schema, path, 0);

    private static ResponseSchema Read(JsonElement schema, string path, int depth)
    {
        if (depth > MaxDepth) throw Unsupported(path, $"schemas nested deeper than {MaxDepth}");
        if (schema.ValueKind == JsonValueKind.True) return new Any();
        if (schema.ValueKind != JsonValueKind.Object)
            throw new LineRejection(LineErrorCode.InvalidParameter, $"{path} must be a JSON Schema object");
        foreach (var keyword in schema.EnumerateObject())
        {
            if (!Supported.Contains(keyword.Name))
                throw Unsupported(path, $"the keyword \"{keyword.Name}\" is not supported (supported: type, properties, required, additionalProperties, items, enum, const, anyOf)");
        }
        if (schema.TryGetProperty("anyOf", out var anyOf))
        {
            if (schema.EnumerateObject().Any(k => k.Name != "anyOf" && !Annotations.Contains(k.Name)))
                throw Unsupported(path, "\"anyOf\" beside other keywords is not supported: put them in each option");
            return new AnyOf(Members(anyOf, $"{path}.anyOf", "anyOf").Select((o, i) => Read(o, $"{path}.anyOf[{i}]", depth + 1)).ToList());
        }
        var types = ReadTypes(schema, path);
        if (schema.TryGetProperty("enum", out _) || schema.TryGetProperty("const", out _)) return ReadLiteral(schema, path, types);
        if (types.Count == 0)
        {
            types = schema.TryGetProperty("properties", out _) || schema.TryGetProperty("additionalProperties", out _) || schema.TryGetProperty("required", out _) ? ["object"]
                : schema.TryGetProperty("items", out _) ? ["array"] : [];
        }
        CheckKeywordsFit(schema, path, types);
        if (types.Count == 0) return new Any();
        var options = types.Select(t => ReadTyped(t, schema, path, depth)).ToList();
        return options.Count == 1 ? options[0] : new AnyOf(options);
    }

    private static List<string> ReadTypes(JsonElement schema, string path)
    {
        if (!schema.TryGetProperty("type", out var type)) return [];
        var names = type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().ToList() : [type];
        var types = new List<string>();
        foreach (var name in names)
        {
            if (name.ValueKind != JsonValueKind.String || !Types.Contains(name.GetString()))
                throw Unsupported(path, $"\"type\" must be one of {string.Join(", ", Types)} or an array of them");
            types.Add(name.GetString()!);
        }
        return types.Count > 0 ? types.Distinct().ToList() : throw Unsupported(path, "\"type\" must not be an empty array");
    }

    /// <summary>A keyword of one type beside a type list without it would be ignored for the others: refused instead.</summary>
    private static void CheckKeywordsFit(JsonElement schema, string path, List<string> types)
    {
        foreach (var (keyword, type) in new[] { ("properties", "object"), ("required", "object"), ("additionalProperties", "object"), ("items", "array") })
        {
            if (schema.TryGetProperty(keyword, out _) && !types.Contains(type))
                throw Unsupported(path, $"\"{keyword}\" applies to type \"{type}\"");
        }
    }

    private static ResponseSchema ReadTyped(string type, JsonElement schema, string path, int depth) => type switch
    {
        "object" => ReadObject(schema, path, depth),
        "array" => new Array(schema.TryGetProperty("items", out var items) ? Read(items, $"{path}.items", depth + 1) : new Any()),
        "string" => new String(),
        "number" => new Number(false),
        "integer" => new Number(true),
        "boolean" => new Boolean(),
        _ => new Null(),
    };

    private static Object ReadObject(JsonElement schema, string path, int depth)
    {
        var properties = new List<KeyValuePair<string, ResponseSchema>>();
        if (schema.TryGetProperty("properties", out var props))
        {
            if (props.ValueKind != JsonValueKind.Object) throw new LineRejection(LineErrorCode.InvalidParameter, $"{path}.properties must be an object");
            foreach (var p in props.EnumerateObject())
            {
                properties.Add(new(p.Name, Read(p.Value, $"{path}.properties.{p.Name}", depth + 1)));
            }
            if (properties.Count > MaxMembers) throw Unsupported(path, $"objects with more than {MaxMembers} properties");
        }
        var required = new List<string>();
        if (schema.TryGetProperty("required", out var req))
        {
            foreach (var name in Members(req, $"{path}.required", "required"))
            {
                if (name.ValueKind != JsonValueKind.String) throw new LineRejection(LineErrorCode.InvalidParameter, $"{path}.required must list property names");
                if (!properties.Any(p => p.Key == name.GetString()))
                    throw Unsupported(path, $"required property \"{name.GetString()}\" is not among the properties (only listed properties are written)");
                required.Add(name.GetString()!);
            }
        }
        ResponseSchema? additional = new Any();
        if (schema.TryGetProperty("additionalProperties", out var extra))
        {
            additional = extra.ValueKind == JsonValueKind.False ? null : Read(extra, $"{path}.additionalProperties", depth + 1);
        }
        return new Object(properties, required, properties.Count > 0 ? null : additional);
    }

    private static Literal ReadLiteral(JsonElement schema, string path, List<string> types)
    {
        if (schema.TryGetProperty("enum", out _) && schema.TryGetProperty("const", out _))
            throw Unsupported(path, "\"enum\" beside \"const\" is not supported");
        var values = schema.TryGetProperty("const", out var constant) ? [constant] : Members(schema.GetProperty("enum"), $"{path}.enum", "enum");
        // a value outside the type list is not a valid output: dropped (the enum ∩ type is what the schema allows)
        var texts = values.Where(v => types.Count == 0 || types.Any(t => IsOfType(v, t))).Select(Compact).Distinct().ToList();
        return texts.Count > 0 ? new Literal(texts) : throw Unsupported(path, "no value of \"enum\"/\"const\" has the schema's \"type\"");
    }

    private static bool IsOfType(JsonElement value, string type) => type switch
    {
        "object" => value.ValueKind == JsonValueKind.Object,
        "array" => value.ValueKind == JsonValueKind.Array,
        "string" => value.ValueKind == JsonValueKind.String,
        "number" => value.ValueKind == JsonValueKind.Number,
        "integer" => value.ValueKind == JsonValueKind.Number && value.GetRawText().All(c => c is '-' or (>= '0' and <= '9')),
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        _ => value.ValueKind == JsonValueKind.Null,
    };

    private static List<JsonElement> Members(JsonElement array, string path, string keyword)
    {
        if (array.ValueKind != JsonValueKind.Array || array.GetArrayLength() == 0)
            throw new LineRejection(LineErrorCode.InvalidParameter, $"{path} must be a non-empty array");
        if (array.GetArrayLength() > MaxMembers) throw Unsupported(path, $"\"{keyword}\" with more than {MaxMembers} members");
        return array.EnumerateArray().ToList();
    }

    /// <summary>The value as the model must write it: compact, strings escaped only where JSON needs it.</summary>
    private static string Compact(JsonElement value)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, JsonDefaults.WriterOptions)) value.WriteTo(writer);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static LineRejection Unsupported(string path, string message) => new(LineErrorCode.UnsupportedParameter, $"{path}: {message}");
}

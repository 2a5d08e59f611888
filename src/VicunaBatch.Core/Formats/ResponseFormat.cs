using System.Text.Json;

namespace VicunaBatch.Core.Formats;

public enum ResponseFormatKind
{
    /// <summary>Free text (the default).</summary>
    Text,

    /// <summary>Any JSON object.</summary>
    JsonObject,

    /// <summary>A value of <see cref="ResponseFormat.Schema"/>.</summary>
    JsonSchema,
}

/// <summary>
/// A chat line's <c>response_format</c>: <c>{"type": "text"}</c>, <c>{"type": "json_object"}</c> or
/// <c>{"type": "json_schema", "json_schema": {"name", "schema", "strict", "description"}}</c>. The output is decoded
/// under a grammar, so it is always valid JSON (of the schema) unless <c>max_tokens</c> cuts it
/// (<c>finish_reason: "length"</c>). <c>strict</c> changes nothing: the schema is always enforced.
/// Equality compares the schema's JSON text.
/// </summary>
public sealed record ResponseFormat(ResponseFormatKind Kind, string? Name = null, ResponseSchema? Schema = null, string? SchemaJson = null)
{
    private static readonly HashSet<string> JsonSchemaFields = ["name", "schema", "strict", "description"];

    public bool Equals(ResponseFormat? other) =>
        other is not null && Kind == other.Kind && Name == other.Name && SchemaJson == other.SchemaJson;

    public override int GetHashCode() => HashCode.Combine(Kind, Name, SchemaJson);

    /// <summary>The line's <c>response_format</c>, or null when it has none.</summary>
    internal static ResponseFormat? Read(JsonElement obj, BatchEndpoint endpoint)
    {
        if (!LineParser.TryGet(obj, "response_format", out var value)) return null;
        if (value.ValueKind != JsonValueKind.Object)
            throw new LineRejection(LineErrorCode.InvalidType, "response_format must be an object");
        var type = LineParser.TryGet(value, "type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        var format = type switch
        {
            "text" => new ResponseFormat(ResponseFormatKind.Text),
            "json_object" => new ResponseFormat(ResponseFormatKind.JsonObject),
            "json_schema" => ReadJsonSchema(value),
            _ => throw new LineRejection(LineErrorCode.InvalidParameter, "response_format.type must be \"text\", \"json_object\" or \"json_schema\""),
        };
        if (format.Kind != ResponseFormatKind.Text && endpoint != BatchEndpoint.ChatCompletions)
            throw new LineRejection(LineErrorCode.UnsupportedParameter, $"response_format {type} applies to {BatchEndpoints.ChatCompletionsUrl} lines only");
        return format;
    }

    private static ResponseFormat ReadJsonSchema(JsonElement value)
    {
        if (!LineParser.TryGet(value, "json_schema", out var spec) || spec.ValueKind != JsonValueKind.Object)
            throw new LineRejection(LineErrorCode.InvalidParameter, "response_format.json_schema must be an object with name and schema");
        foreach (var field in spec.EnumerateObject())
        {
            if (!JsonSchemaFields.Contains(field.Name))
                throw new LineRejection(LineErrorCode.UnsupportedParameter, $"response_format.json_schema.{field.Name} is not supported (supported: name, schema, strict, description)");
        }
        if (!LineParser.TryGet(spec, "name", out var name) || name.ValueKind != JsonValueKind.String || name.GetString()!.Length is 0 or > 64)
            throw new LineRejection(LineErrorCode.InvalidParameter, "response_format.json_schema.name must be a string of 1 to 64 characters");
        if (LineParser.TryGet(spec, "strict", out var strict) && strict.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            throw new LineRejection(LineErrorCode.InvalidType, "response_format.json_schema.strict must be a boolean");
        if (!LineParser.TryGet(spec, "schema", out var schema))
            return new ResponseFormat(ResponseFormatKind.JsonSchema, name.GetString(), new ResponseSchema.Any(), "{}");
        return new ResponseFormat(ResponseFormatKind.JsonSchema, name.GetString(),
            ResponseSchema.Read(schema, "response_format.json_schema.schema"), schema.GetRawText());
    }
}

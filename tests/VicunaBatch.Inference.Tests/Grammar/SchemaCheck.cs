using System.Text.Json;
using VicunaBatch.Inference.Grammar;

namespace VicunaBatch.Inference.Tests.Grammar;

/// <summary>Whether a parsed value satisfies a schema node, by JSON Schema's rules for the subset (the test's own validator).</summary>
internal static class SchemaCheck
{
    public static bool Satisfies(JsonElement value, JsonSchemaNode schema) => schema switch
    {
        AnyValueSchema => true,
        ObjectSchema o => value.ValueKind == JsonValueKind.Object && ObjectSatisfies(value, o),
        ArraySchema a => value.ValueKind == JsonValueKind.Array && value.EnumerateArray().All(item => Satisfies(item, a.Items)),
        StringSchema => value.ValueKind == JsonValueKind.String,
        NumberSchema n => value.ValueKind == JsonValueKind.Number && (!n.Integer || value.TryGetInt64(out _) || value.GetDouble() % 1 == 0),
        BooleanSchema => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        NullSchema => value.ValueKind == JsonValueKind.Null,
        LiteralSchema l => l.Texts.Any(t => JsonElement.DeepEquals(JsonDocument.Parse(t).RootElement, value)),
        AnyOfSchema u => u.Options.Any(option => Satisfies(value, option)),
        _ => throw new ArgumentException($"unknown schema node {schema}"),
    };

    private static bool ObjectSatisfies(JsonElement value, ObjectSchema o)
    {
        var names = value.EnumerateObject().Select(p => p.Name).ToList();
        if (names.Distinct().Count() != names.Count) return false;
        if (o.Required.Any(r => !names.Contains(r))) return false;
        foreach (var property in value.EnumerateObject())
        {
            var known = o.Properties.Where(p => p.Key == property.Name).Select(p => p.Value).FirstOrDefault();
            var schema = known ?? o.Additional;
            if (schema is null || !Satisfies(property.Value, schema)) return false;
        }
        return true;
    }
}

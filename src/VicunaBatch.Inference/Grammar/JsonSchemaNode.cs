using System.Collections.Immutable;

namespace VicunaBatch.Inference.Grammar;

/// <summary>
/// The JSON values a constrained output may take: the subset of JSON Schema the grammar enforces. Built by the caller
/// (Execution maps a request's schema onto it); every node here is enforced exactly, nothing is loosened.
/// </summary>
public abstract record JsonSchemaNode
{
    /// <summary>Any JSON value.</summary>
    public static JsonSchemaNode Any { get; } = new AnyValueSchema();

    /// <summary>Any JSON object (<c>response_format: json_object</c>).</summary>
    public static JsonSchemaNode AnyObject { get; } = new ObjectSchema([], [], Any);
}

public sealed record AnyValueSchema : JsonSchemaNode;

/// <summary>An object. <paramref name="Additional"/> null: no keys but <paramref name="Properties"/>; else extra keys take that schema.</summary>
public sealed record ObjectSchema(
    ImmutableArray<KeyValuePair<string, JsonSchemaNode>> Properties, ImmutableArray<string> Required, JsonSchemaNode? Additional) : JsonSchemaNode;

public sealed record ArraySchema(JsonSchemaNode Items) : JsonSchemaNode;

public sealed record StringSchema : JsonSchemaNode;

/// <summary>A number; <paramref name="Integer"/>: digits only (no fraction, no exponent).</summary>
public sealed record NumberSchema(bool Integer) : JsonSchemaNode;

public sealed record BooleanSchema : JsonSchemaNode;

public sealed record NullSchema : JsonSchemaNode;

/// <summary><c>enum</c> / <c>const</c>: one of these values, written as compact JSON texts (<c>"a"</c>, <c>1</c>, <c>{"k":true}</c>).</summary>
public sealed record LiteralSchema(ImmutableArray<string> Texts) : JsonSchemaNode;

/// <summary><c>anyOf</c> (and a <c>type</c> array): a value of any of the options.</summary>
public sealed record AnyOfSchema(ImmutableArray<JsonSchemaNode> Options) : JsonSchemaNode;

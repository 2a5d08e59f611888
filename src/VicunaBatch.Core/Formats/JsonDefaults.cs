using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace VicunaBatch.Core.Formats;

/// <summary>
/// The one JSON convention of Core: snake_case names and enums, nulls written (as OpenAI does). Each namespace that
/// stores records owns their JSON (<c>JobsJson</c>, <c>ResultsJson</c>, …): these conventions with compile-time
/// metadata from its own <see cref="JsonSerializerContext"/>, so no namespace needs to know another's records. The
/// reflection-based serializer builds that metadata at run time on first use, on the cores the engine runs on
/// (docs/performance.md, "ReadyToRun at build time"); the native build (scripts/publish-native.sh) cannot build it at
/// run time at all for records with value-type members.
/// </summary>
public static class JsonDefaults
{
    /// <summary>The conventions with run-time (reflection) metadata only: for JSON that is not a stored record.</summary>
    public static readonly JsonSerializerOptions Options = Create(null);

    /// <summary>Writer options for hand-written lines: compact, no HTML escaping.</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The snake_case name of an enum value (<c>DuplicateCustomId</c> → <c>duplicate_custom_id</c>).</summary>
    public static string SnakeCase<TEnum>(this TEnum value) where TEnum : struct, Enum =>
        JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());

    /// <summary>
    /// The conventions with <paramref name="context"/>'s compile-time metadata first and reflection for the rest. A
    /// context is declared with <see cref="SourceGeneration"/>'s settings so both agree on names.
    /// </summary>
    public static JsonSerializerOptions Create(IJsonTypeInfoResolver? context, bool indented = false)
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            WriteIndented = indented,
            TypeInfoResolver = context is null
                ? new DefaultJsonTypeInfoResolver()
                : JsonTypeInfoResolver.Combine(context, new DefaultJsonTypeInfoResolver()),
        };
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false));
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    /// <summary>What every context of Core is declared with: <c>[JsonSourceGenerationOptions(…)]</c> repeats these two.</summary>
    public const JsonKnownNamingPolicy SourceGeneration = JsonKnownNamingPolicy.SnakeCaseLower;
}

using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace VicunaBatch.Core;

/// <summary>The one JSON configuration of Core: snake_case names and enums, nulls written (as OpenAI does).</summary>
public static class JsonDefaults
{
    public static readonly JsonSerializerOptions Options = Create(indented: false);
    public static readonly JsonSerializerOptions Indented = Create(indented: true);

    /// <summary>Writer options for hand-written lines: compact, no HTML escaping.</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The snake_case name of an enum value (<c>DuplicateCustomId</c> → <c>duplicate_custom_id</c>).</summary>
    public static string SnakeCase<TEnum>(this TEnum value) where TEnum : struct, Enum =>
        JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());

    private static JsonSerializerOptions Create(bool indented)
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            WriteIndented = indented,
            // compile-time metadata for the records a job stores and reads again and again, reflection for the rest
            TypeInfoResolver = JsonTypeInfoResolver.Combine(StoredRecordsJson.Default, new DefaultJsonTypeInfoResolver()),
        };
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false));
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}

/// <summary>
/// Compile-time JSON metadata (the same naming as <see cref="JsonDefaults.Options"/>) for what a job writes and reads on
/// its way: the job, its plan, shard messages and reports, each request's checkpointed outcome, error lines. The
/// reflection-based serializer builds this metadata at run time on first use, tens of ms a type, on the cores the
/// engine runs on; the CLI's ReadyToRun build has the generated code precompiled.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(BatchJob))]
[JsonSerializable(typeof(JobPlan))]
[JsonSerializable(typeof(Shard))]
[JsonSerializable(typeof(ShardReport))]
[JsonSerializable(typeof(RequestOutcome))]
[JsonSerializable(typeof(ErrorLine))]
[JsonSerializable(typeof(ShardDoneEvent))]
internal sealed partial class StoredRecordsJson : JsonSerializerContext;

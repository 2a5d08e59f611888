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
/// Compile-time JSON metadata (the same naming as <see cref="JsonDefaults.Options"/>) for every record Core writes and
/// reads: a job's on its way (the job, its plan, shard messages and reports, each request's checkpointed outcome, error
/// lines), the API's batches and files, pipelines' state, webhook events and their log. The reflection-based serializer
/// builds this metadata at run time on first use, tens of ms a type, on the cores the engine runs on; the CLI's
/// ReadyToRun build has the generated code precompiled, and the native build (scripts/publish-native.sh) cannot build
/// it at run time at all for records with value-type members.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(BatchJob))]
[JsonSerializable(typeof(JobPlan))]
[JsonSerializable(typeof(Shard))]
[JsonSerializable(typeof(ShardReport))]
[JsonSerializable(typeof(RequestOutcome))]
[JsonSerializable(typeof(ErrorLine))]
[JsonSerializable(typeof(ShardDoneEvent))]
[JsonSerializable(typeof(BatchRecord))]
[JsonSerializable(typeof(StoredFile))]
[JsonSerializable(typeof(PipelineWatermark))]
[JsonSerializable(typeof(PipelineCurrentRun))]
[JsonSerializable(typeof(PipelineRunLock))]
[JsonSerializable(typeof(PipelineScheduleMark))]
[JsonSerializable(typeof(RunManifest))]
[JsonSerializable(typeof(StageInputLine))]
[JsonSerializable(typeof(PipelineRunEvent.Wire), TypeInfoPropertyName = "PipelineRunEventWire")]
[JsonSerializable(typeof(WebhookEvent.Wire), TypeInfoPropertyName = "WebhookEventWire")]
[JsonSerializable(typeof(WebhookDelivery))]
[JsonSerializable(typeof(WebhookAttempt))]
internal sealed partial class StoredRecordsJson : JsonSerializerContext;

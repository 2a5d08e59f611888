using System.Text.Json;
using System.Text.Json.Serialization;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Pipelines;

/// <summary>The JSON of the Pipelines records: <see cref="JsonDefaults"/>' conventions with their compile-time metadata.</summary>
internal static class PipelinesJson
{
    public static readonly JsonSerializerOptions Options = JsonDefaults.Create(PipelinesJsonContext.Default);
    public static readonly JsonSerializerOptions Indented = JsonDefaults.Create(PipelinesJsonContext.Default, indented: true);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonDefaults.SourceGeneration, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(PipelineWatermark))]
[JsonSerializable(typeof(PipelineCurrentRun))]
[JsonSerializable(typeof(PipelineRunLock))]
[JsonSerializable(typeof(PipelineScheduleMark))]
[JsonSerializable(typeof(RunManifest))]
[JsonSerializable(typeof(StageInputLine))]
[JsonSerializable(typeof(PipelineRunEvent.Wire), TypeInfoPropertyName = "PipelineRunEventWire")]
internal sealed partial class PipelinesJsonContext : JsonSerializerContext;

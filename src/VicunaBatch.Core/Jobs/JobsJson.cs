using System.Text.Json;
using System.Text.Json.Serialization;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Jobs;

/// <summary>The JSON of the Jobs records: <see cref="JsonDefaults"/>' conventions with their compile-time metadata.</summary>
public static class JobsJson
{
    public static readonly JsonSerializerOptions Options = JsonDefaults.Create(JobsJsonContext.Default);
    public static readonly JsonSerializerOptions Indented = JsonDefaults.Create(JobsJsonContext.Default, indented: true);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonDefaults.SourceGeneration, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(BatchJob))]
[JsonSerializable(typeof(JobPlan))]
internal sealed partial class JobsJsonContext : JsonSerializerContext;

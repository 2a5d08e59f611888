using System.Text.Json;
using System.Text.Json.Serialization;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Batches;

/// <summary>The JSON of the Batches records: <see cref="JsonDefaults"/>' conventions with their compile-time metadata.</summary>
internal static class BatchesJson
{
    public static readonly JsonSerializerOptions Options = JsonDefaults.Create(BatchesJsonContext.Default);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonDefaults.SourceGeneration, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(BatchRecord))]
internal sealed partial class BatchesJsonContext : JsonSerializerContext;

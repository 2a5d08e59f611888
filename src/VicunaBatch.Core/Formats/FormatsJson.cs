using System.Text.Json;
using System.Text.Json.Serialization;

namespace VicunaBatch.Core.Formats;

/// <summary>The JSON of the Formats records: <see cref="JsonDefaults"/>' conventions with their compile-time metadata.</summary>
internal static class FormatsJson
{
    public static readonly JsonSerializerOptions Options = JsonDefaults.Create(FormatsJsonContext.Default);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonDefaults.SourceGeneration, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(Shard))]
internal sealed partial class FormatsJsonContext : JsonSerializerContext;

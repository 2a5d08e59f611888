using System.Text.Json;
using System.Text.Json.Serialization;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Services;

/// <summary>The JSON of the Services records: <see cref="JsonDefaults"/>' conventions with their compile-time metadata.</summary>
internal static class ServicesJson
{
    public static readonly JsonSerializerOptions Options = JsonDefaults.Create(ServicesJsonContext.Default);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonDefaults.SourceGeneration, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ShardReport))]
[JsonSerializable(typeof(ShardDoneEvent))]
[JsonSerializable(typeof(ShardAttempt))]
[JsonSerializable(typeof(ShardProgressRecord))]
internal sealed partial class ServicesJsonContext : JsonSerializerContext;

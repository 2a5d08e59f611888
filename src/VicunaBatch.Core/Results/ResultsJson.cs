using System.Text.Json;
using System.Text.Json.Serialization;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Results;

/// <summary>The JSON of the Results records: <see cref="JsonDefaults"/>' conventions with their compile-time metadata.</summary>
public static class ResultsJson
{
    public static readonly JsonSerializerOptions Options = JsonDefaults.Create(ResultsJsonContext.Default);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonDefaults.SourceGeneration, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(RequestOutcome))]
[JsonSerializable(typeof(ErrorLine))]
internal sealed partial class ResultsJsonContext : JsonSerializerContext;

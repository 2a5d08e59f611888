using System.Text.Json;
using System.Text.Json.Serialization;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Files;

/// <summary>The JSON of the Files records: <see cref="JsonDefaults"/>' conventions with their compile-time metadata.</summary>
internal static class FilesJson
{
    public static readonly JsonSerializerOptions Options = JsonDefaults.Create(FilesJsonContext.Default);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonDefaults.SourceGeneration, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(StoredFile))]
internal sealed partial class FilesJsonContext : JsonSerializerContext;

using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;

namespace VicunaBatch.Api;

/// <summary>The API's JSON: <see cref="JsonDefaults"/>' conventions, with compile-time metadata for the objects only the API writes
/// and for the jobs it shows (<see cref="JobsJson"/>).</summary>
internal static class ApiJson
{
    public static readonly JsonSerializerOptions Options = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonDefaults.Options)
        {
            TypeInfoResolver = JsonTypeInfoResolver.Combine(ApiWireJson.Default, JobsJson.Options.TypeInfoResolver),
        };
        options.MakeReadOnly();
        return options;
    }
}

/// <summary>Compile-time metadata for the API's wire objects (see <see cref="ApiJson"/>).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(FileObject))]
[JsonSerializable(typeof(FileListObject))]
[JsonSerializable(typeof(FileDeletedObject))]
[JsonSerializable(typeof(ValidationObject))]
[JsonSerializable(typeof(ApiErrors.ErrorEnvelope))]
[JsonSerializable(typeof(ApiErrors.ErrorWithValidation))]
internal sealed partial class ApiWireJson : JsonSerializerContext;

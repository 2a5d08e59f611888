using System.Text.Json;
using System.Text.Json.Serialization;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Webhooks;

/// <summary>The JSON of the Webhooks records: <see cref="JsonDefaults"/>' conventions with their compile-time metadata.</summary>
internal static class WebhooksJson
{
    public static readonly JsonSerializerOptions Options = JsonDefaults.Create(WebhooksJsonContext.Default);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonDefaults.SourceGeneration, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(WebhookEvent.Wire), TypeInfoPropertyName = "WebhookEventWire")]
[JsonSerializable(typeof(WebhookDelivery))]
[JsonSerializable(typeof(WebhookAttempt))]
internal sealed partial class WebhooksJsonContext : JsonSerializerContext;

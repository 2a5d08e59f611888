using System.Text.Json;

namespace VicunaBatch.Functions;

/// <summary>
/// One <c>Microsoft.Storage.BlobCreated</c> event in the Event Grid schema, as the inbox-events subscription
/// (infra/bicep/modules/inbox-events.bicep) writes it to the Storage queue: one event per message, a JSON object
/// <c>{"id","topic","subject","eventType","eventTime","data":{"api","eTag","url",…},"dataVersion"}</c>.
/// </summary>
/// <param name="Subject"><c>/blobServices/default/containers/{container}/blobs/{name}</c>.</param>
/// <param name="Url">The blob's URL (<c>data.url</c>); the blob name in it may be percent-encoded.</param>
/// <param name="ETag"><c>data.eTag</c> of the version that was created (unquoted, <c>0x8D…</c>).</param>
/// <param name="Api">The operation that created it (<c>PutBlob</c>, <c>PutBlockList</c>, <c>CopyBlob</c>, …); null when absent.</param>
public sealed record BlobCreatedEvent(string Id, string Subject, Uri Url, string ETag, string? Api)
{
    public const string EventType = "Microsoft.Storage.BlobCreated";

    /// <exception cref="FormatException">The text is not JSON, not one Event Grid event, of another event type, or lacks
    /// <c>id</c>, <c>subject</c>, an absolute http(s) <c>data.url</c> or <c>data.eTag</c>; the message says which.</exception>
    public static BlobCreatedEvent Parse(string text)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(text); }
        catch (JsonException e) { throw new FormatException($"not JSON: {e.Message}", e); }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new FormatException($"not an Event Grid event: the JSON is {root.ValueKind}, not an object");
            var eventType = String(root, "eventType");
            if (eventType != EventType) throw new FormatException($"event type \"{eventType}\", not {EventType}");
            if (!root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Object) throw new FormatException("no data object");
            var url = String(data, "url");
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http"))
                throw new FormatException($"data.url \"{url}\" is not an absolute http(s) URL");
            return new BlobCreatedEvent(String(root, "id"), String(root, "subject"), uri, String(data, "eTag"),
                data.TryGetProperty("api", out var api) && api.ValueKind == JsonValueKind.String ? api.GetString() : null);
        }
    }

    private static string String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text
            ? text
            : throw new FormatException($"no {name} string");
}

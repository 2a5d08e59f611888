using System.Text.Json;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Services;

/// <summary>
/// A control-plane message: a worker settled a shard (completed or dead-lettered, its report written), so the
/// finalizer should look at the job. Carries only ids; the finalizer reads the truth from the job's blobs, so a
/// duplicate or late event is harmless.
/// </summary>
public sealed record ShardDoneEvent(string JobId, int ShardIndex)
{
    /// <summary>Message id: one per shard (queues that detect duplicates keep one).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string MessageId => $"{JobId}:{ShardIndex}:done";

    public OutgoingMessage ToMessage() => new(MessageId, JsonSerializer.Serialize(this, ServicesJson.Options));

    /// <exception cref="JsonException">Not a shard-done event, or its job id is invalid.</exception>
    public static ShardDoneEvent Parse(string json)
    {
        var parsed = JsonSerializer.Deserialize<ShardDoneEvent>(json, ServicesJson.Options);
        if (parsed is null || !JobIds.IsValid(parsed.JobId) || parsed.ShardIndex < 0)
            throw new JsonException("shard-done event lacks a valid job_id and shard_index");
        return parsed;
    }
}

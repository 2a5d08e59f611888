using System.Text.Json;

namespace VicunaBatch.Core;

/// <summary>
/// A worker settled a shard (completed or dead-lettered): the finalizer should look at the job. The body of one
/// control-plane message (the <c>shard-done</c> Storage queue on Azure, a SQLite queue locally). Abandoned shards
/// send none: another delivery of the same message will settle them.
/// </summary>
public sealed record ShardSettledEvent(string JobId, int ShardIndex, ShardDisposition Disposition)
{
    /// <summary>Stable per job and shard: a repeated send is deduplicated where the queue does that.</summary>
    public string MessageId => $"{JobId}:{ShardIndex}:settled";

    public string ToJson() => JsonSerializer.Serialize(this, JsonDefaults.Options);

    /// <summary>Parses a message body; <see cref="JsonException"/> when it is not a settled event.</summary>
    public static ShardSettledEvent FromJson(string json)
    {
        var parsed = JsonSerializer.Deserialize<ShardSettledEvent>(json, JsonDefaults.Options) ?? throw new JsonException("shard event is null");
        if (!JobIds.IsValid(parsed.JobId) || parsed.ShardIndex < 0)
            throw new JsonException($"shard event names no valid job and shard: {json}");
        return parsed;
    }
}

/// <summary>Sends <see cref="ShardSettledEvent"/>s to a control-plane queue.</summary>
public sealed class ShardSettledEvents(IWorkQueue controlQueue)
{
    public Task PublishAsync(Shard shard, ShardDisposition disposition, CancellationToken cancellationToken = default)
    {
        if (disposition == ShardDisposition.Abandoned)
            throw new ArgumentException("an abandoned shard is not settled: its message is redelivered", nameof(disposition));
        var settled = new ShardSettledEvent(shard.JobId, shard.ShardIndex, disposition);
        return controlQueue.SendAsync([new OutgoingMessage(settled.MessageId, settled.ToJson())], cancellationToken);
    }
}

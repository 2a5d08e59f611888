using System.Globalization;
using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Services;

/// <summary>
/// A shard's deliveries as far as they were judged: <see cref="Since"/> is the first delivery of message generation
/// <see cref="Generation"/> not judged yet, <see cref="DoneAtStart"/> the requests checkpointed when it began,
/// <see cref="Stalled"/> the deliveries in a row before it that made no progress, <see cref="Released"/> whether that
/// delivery was given back on a graceful stop (or continued as a fresh message) rather than lost.
/// </summary>
public sealed record ShardAttempt(int Since, int DoneAtStart, int Stalled, bool Released, int Generation);

/// <summary>
/// Tells a shard that keeps failing from one whose workers keep being stopped. A shard is poison only when several
/// deliveries in a row made no progress (no request checkpointed between one delivery's start and the next's); a
/// delivery given back on a graceful stop does not count, and any progress starts the count again. A message's own
/// delivery count cannot tell them apart (every restart adds one), and on Service Bus it cannot be reset: a shard
/// delivered often but making progress goes on as a fresh message, generation <c>g</c> with the id
/// <c>{job}:{shard}:g{g}</c>, which duplicate detection does not take for the old one. The record is the blob
/// <c>jobs/{id}/attempts/{index}.json</c>, read and written only when a shard is delivered again: a first delivery costs
/// nothing.
/// </summary>
public sealed class ShardAttempts(IBlobStore blobs)
{
    /// <summary>The message id of <paramref name="shard"/>'s generation <paramref name="generation"/> (0: the first message).</summary>
    public static string MessageIdOf(Shard shard, int generation) =>
        generation == 0 ? shard.MessageId : string.Create(CultureInfo.InvariantCulture, $"{shard.MessageId}:g{generation}");

    /// <summary>The generation a message id names (0 for the first message of a shard).</summary>
    public static int GenerationOf(string messageId)
    {
        var at = messageId.LastIndexOf(":g", StringComparison.Ordinal);
        return at >= 0 && int.TryParse(messageId.AsSpan(at + 2), NumberStyles.None, CultureInfo.InvariantCulture, out var g) ? g : 0;
    }

    /// <summary>
    /// Judges the deliveries before this one (<paramref name="message"/>, with <paramref name="numDone"/> requests of the
    /// shard checkpointed now) and records this one as begun; the returned attempt's <see cref="ShardAttempt.Stalled"/> is
    /// how many deliveries in a row made no progress.
    /// </summary>
    public async Task<ShardAttempt> BeginAsync(Shard shard, ReceivedMessage message, int numDone, CancellationToken cancellationToken = default)
    {
        var generation = GenerationOf(message.MessageId);
        if (message.DeliveryCount <= 1 && generation == 0) return new ShardAttempt(1, numDone, 0, false, 0);
        var previous = await ReadAsync(shard, cancellationToken) ?? new ShardAttempt(1, 0, 0, false, 0);
        // deliveries of this generation since the last judged one began, less one given back rather than lost
        int judged = previous.Generation == generation
            ? message.DeliveryCount - previous.Since - (previous.Released ? 1 : 0)
            : message.DeliveryCount - 1;
        var stalled = numDone > previous.DoneAtStart ? 0 : previous.Stalled + Math.Max(0, judged);
        var attempt = new ShardAttempt(message.DeliveryCount, numDone, stalled, false, generation);
        await WriteAsync(shard, attempt, cancellationToken);
        return attempt;
    }

    /// <summary>The delivery <paramref name="attempt"/> is given back, not lost (a graceful stop, a fresh message): it does not count.</summary>
    public Task ReleaseAsync(Shard shard, ShardAttempt attempt, int numDone, CancellationToken cancellationToken = default) =>
        WriteAsync(shard, attempt with { DoneAtStart = numDone, Released = true }, cancellationToken);

    private async Task<ShardAttempt?> ReadAsync(Shard shard, CancellationToken cancellationToken)
    {
        try { return JsonSerializer.Deserialize<ShardAttempt>(await blobs.ReadBytesAsync(JobIds.ShardAttemptBlob(shard.JobId, shard.ShardIndex), cancellationToken), ServicesJson.Options); }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.NotFound) { return null; }
    }

    private Task WriteAsync(Shard shard, ShardAttempt attempt, CancellationToken cancellationToken) =>
        blobs.PutBytesAsync(JobIds.ShardAttemptBlob(shard.JobId, shard.ShardIndex), JsonSerializer.SerializeToUtf8Bytes(attempt, ServicesJson.Options),
            BlobCondition.None, cancellationToken);
}

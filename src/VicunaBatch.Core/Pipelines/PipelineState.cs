using System.Text.Json;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Pipelines;

/// <summary>What a pipeline has already summarized: document path → the ETag seen when it was.</summary>
public sealed record PipelineWatermark(IReadOnlyDictionary<string, string> PathToETag, string? LastRunId, DateTimeOffset? LastRunAt)
{
    public static readonly PipelineWatermark Empty = new(new Dictionary<string, string>(), null, null);
}

/// <summary>The lock blob's content: which tick holds the pipeline and until when.</summary>
public sealed record PipelineRunLock(string RunId, DateTimeOffset ExpiresAt);

/// <summary>A run that started and has not finished: its id and the files it took on (so a resumed run reuses its stage jobs).</summary>
public sealed record PipelineCurrentRun(string RunId, DateTimeOffset StartedAt, IReadOnlyList<SourceFile> Files);

/// <summary>
/// Durable pipeline state in the blob store, under <c>pipelines/{name}/</c>: <c>watermark.json</c> (written only when a
/// run has finished), <c>current.json</c> (the unfinished run, resumed by the next tick) and <c>run-lock.json</c>, a create-once blob that expires like a lease, so that overlapping ticks or
/// hosts do not run the same pipeline twice and a crashed run's lock does not block the next one forever.
/// </summary>
public sealed class PipelineState(IBlobStore blobs, string pipelineName, TimeProvider time)
{
    public string WatermarkBlob => $"pipelines/{pipelineName}/watermark.json";
    public string CurrentRunBlob => $"pipelines/{pipelineName}/current.json";
    public string LockBlob => $"pipelines/{pipelineName}/run-lock.json";

    public async Task<PipelineWatermark> ReadWatermarkAsync(CancellationToken cancellationToken = default)
    {
        if (!await blobs.ExistsAsync(WatermarkBlob, cancellationToken)) return PipelineWatermark.Empty;
        return JsonSerializer.Deserialize<PipelineWatermark>(await blobs.ReadBytesAsync(WatermarkBlob, cancellationToken), PipelinesJson.Options)
            ?? throw new InvalidDataException($"{WatermarkBlob} is not a watermark");
    }

    public Task WriteWatermarkAsync(PipelineWatermark watermark, CancellationToken cancellationToken = default) =>
        blobs.PutBytesAsync(WatermarkBlob, JsonSerializer.SerializeToUtf8Bytes(watermark, PipelinesJson.Indented), BlobCondition.None, cancellationToken);

    public async Task<PipelineCurrentRun?> ReadCurrentRunAsync(CancellationToken cancellationToken = default)
    {
        if (!await blobs.ExistsAsync(CurrentRunBlob, cancellationToken)) return null;
        return JsonSerializer.Deserialize<PipelineCurrentRun>(await blobs.ReadBytesAsync(CurrentRunBlob, cancellationToken), PipelinesJson.Options);
    }

    public Task WriteCurrentRunAsync(PipelineCurrentRun run, CancellationToken cancellationToken = default) =>
        blobs.PutBytesAsync(CurrentRunBlob, JsonSerializer.SerializeToUtf8Bytes(run, PipelinesJson.Indented), BlobCondition.None, cancellationToken);

    public Task ClearCurrentRunAsync(CancellationToken cancellationToken = default) => blobs.DeleteAsync(CurrentRunBlob, cancellationToken);

    /// <summary>Removes the lock whoever holds it: only for a host that knows no other run can be alive (it owns the state folder).</summary>
    public Task BreakLockAsync(CancellationToken cancellationToken = default) => blobs.DeleteAsync(LockBlob, cancellationToken);

    /// <summary>Takes the run lock for <paramref name="duration"/>; false when another run holds an unexpired one.</summary>
    public async Task<bool> TryLockAsync(string runId, TimeSpan duration, CancellationToken cancellationToken = default)
    {
        var content = JsonSerializer.SerializeToUtf8Bytes(new PipelineRunLock(runId, time.GetUtcNow() + duration), PipelinesJson.Options);
        try
        {
            await blobs.PutBytesAsync(LockBlob, content, BlobCondition.IfNotExists, cancellationToken);
            return true;
        }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed) { }

        // held: take it over only if it expired, and only if nobody else did first (ETag)
        var properties = await blobs.GetPropertiesAsync(LockBlob, cancellationToken);
        if (properties is null) return await TryLockAsync(runId, duration, cancellationToken);
        var held = await ReadLockAsync(cancellationToken);
        if (held is not null && held.ExpiresAt > time.GetUtcNow()) return false;
        try
        {
            await blobs.PutBytesAsync(LockBlob, content, BlobCondition.IfMatch(properties.ETag), cancellationToken);
            return true;
        }
        catch (BlobStoreException e) when (e.Reason is BlobStoreFailure.ConditionFailed or BlobStoreFailure.NotFound) { return false; }
    }

    public async Task<PipelineRunLock?> ReadLockAsync(CancellationToken cancellationToken = default)
    {
        try { return JsonSerializer.Deserialize<PipelineRunLock>(await blobs.ReadBytesAsync(LockBlob, cancellationToken), PipelinesJson.Options); }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.NotFound) { return null; }
        catch (JsonException) { return null; } // a torn lock counts as expired
    }

    /// <summary>Releases the lock if <paramref name="runId"/> still holds it.</summary>
    public async Task UnlockAsync(string runId, CancellationToken cancellationToken = default)
    {
        if ((await ReadLockAsync(cancellationToken))?.RunId == runId) await blobs.DeleteAsync(LockBlob, cancellationToken);
    }
}

using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Core.Services;

/// <summary>What a running shard has finished so far (deduplicated by custom_id), as its worker last recorded it; also
/// the sum of finished requests a shard's report and a job's progress are counted with.</summary>
public sealed record ShardProgressRecord(int Completed, int Failed, long InputTokens, long OutputTokens)
{
    public static readonly ShardProgressRecord None = new(0, 0, 0, 0);

    /// <summary>These counts and one more finished request: a failure counts no tokens.</summary>
    public ShardProgressRecord Add(RequestOutcome outcome) => outcome.Succeeded
        ? new(Completed + 1, Failed, InputTokens + outcome.PromptTokens, OutputTokens + outcome.CompletionTokens)
        : this with { Failed = Failed + 1 };

    public ShardProgressRecord Plus(ShardProgressRecord other) =>
        new(Completed + other.Completed, Failed + other.Failed, InputTokens + other.InputTokens, OutputTokens + other.OutputTokens);
}

/// <summary>
/// A running shard's progress record at <see cref="JobIds.ShardProgressBlob"/>: the counts and tokens of its finished
/// requests, rewritten by its worker at most once per <see cref="ShardProcessorOptions.ProgressInterval"/>, so a job's <c>request_counts</c> and <c>usage</c> move per request without a blob
/// write per request. The shard's report supersedes it once written. Best effort: a write the store refuses is skipped
/// (progress shows less for a while; results do not depend on it).
/// </summary>
internal sealed class ShardProgress(IBlobStore blobs, Shard shard, TimeProvider time, TimeSpan interval)
{
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _writing = new(1, 1);
    private ShardProgressRecord _counts = ShardProgressRecord.None;
    private DateTimeOffset? _lastWrite;

    /// <summary>Starts from what earlier deliveries of the shard checkpointed.</summary>
    public void Seed(IEnumerable<RequestOutcome> outcomes)
    {
        lock (_lock) foreach (var outcome in outcomes) _counts = _counts.Add(outcome);
    }

    /// <summary>Counts one finished request and writes the record when the interval has passed since the last write.</summary>
    public async Task RecordAsync(RequestOutcome outcome, CancellationToken cancellationToken)
    {
        bool due;
        lock (_lock)
        {
            _counts = _counts.Add(outcome);
            var now = time.GetUtcNow();
            due = _lastWrite is not { } last || now - last >= interval;
            if (due) _lastWrite = now;
        }
        if (due) await WriteAsync(cancellationToken);
    }

    private async Task WriteAsync(CancellationToken cancellationToken)
    {
        await _writing.WaitAsync(cancellationToken);
        try
        {
            ShardProgressRecord record;
            lock (_lock) record = _counts;
            await blobs.PutBytesAsync(JobIds.ShardProgressBlob(shard.JobId, shard.ShardIndex),
                JsonSerializer.SerializeToUtf8Bytes(record, ServicesJson.Options), BlobCondition.None, cancellationToken);
        }
        catch (BlobStoreException) { } // best effort: the next write or the shard's report says it
        finally { _writing.Release(); }
    }

    /// <summary>The progress records of the job's shards that have no report yet (<paramref name="reported"/>).</summary>
    public static async Task<List<ShardProgressRecord>> ReadUnreportedAsync(
        IBlobStore blobs, string jobId, IReadOnlySet<int> reported, CancellationToken cancellationToken)
    {
        var records = new List<ShardProgressRecord>();
        await foreach (var name in blobs.ListAsync(JobIds.ShardProgressPrefix(jobId), cancellationToken))
        {
            if (JobIds.ShardIndexOf(name) is not { } index || reported.Contains(index)) continue;
            try
            {
                records.Add(JsonSerializer.Deserialize<ShardProgressRecord>(await blobs.ReadBytesAsync(name, cancellationToken), ServicesJson.Options)!);
            }
            catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.NotFound) { }
        }
        return records;
    }
}

using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Blobs;
using Azure;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Azure;

/// <summary>
/// <see cref="ICheckpointStore"/> as append blobs: one JSON line per outcome, in
/// <c>{jobId}/{shard:D6}.{segment:D4}.jsonl</c> of the results container; the outcomes of a shard that finish while its
/// previous append is in flight go together as the next block (<see cref="GroupCommit{TKey}"/>), so a step that
/// finishes many requests costs one call, not one per request.
/// <para>Why append blobs, one per shard: a block append is atomic and durable when the call returns, so a
/// killed worker never leaves half a line, and workers that run the same shard at once (a lock lost and the
/// shard redelivered) append to the same blob without coordination — at-least-once, readers deduplicate.
/// Reading a shard is one download instead of one per request (a blob per request would cost the finalizer
/// a round trip per line of a million-line job). An append blob holds at most 50,000 blocks; a shard has
/// <c>RequestsPerShard</c> (64) outcomes per delivery, at most one block each, so a shard needs a second segment only if it is
/// redelivered hundreds of times, and then appends roll over to the next segment.</para>
/// </summary>
public sealed class BlobCheckpointStore : ICheckpointStore
{
    /// <summary>The service's limit of committed blocks in one append blob.</summary>
    public const int MaxBlocksPerAppendBlob = 50_000;

    /// <summary>Most bytes of outcomes in one block (the service takes up to 4 MiB a block in every API version).</summary>
    private const int MaxBlockBytes = 4 << 20;

    private const int MaxAppendTries = 8;
    private readonly GroupCommit<string> _commits;
    private readonly BlobContainerClient _container;
    private readonly int _blocksPerBlob;
    private readonly ConcurrentDictionary<string, ShardSegments> _shardToSegments = new(StringComparer.Ordinal);

    /// <param name="container">The results container.</param>
    /// <param name="blocksPerBlob">Appends per blob before the next segment (tests make it small).</param>
    public BlobCheckpointStore(BlobContainerClient container, int blocksPerBlob = MaxBlocksPerAppendBlob)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blocksPerBlob, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(blocksPerBlob, MaxBlocksPerAppendBlob);
        (_container, _blocksPerBlob) = (container, blocksPerBlob);
        _commits = new GroupCommit<string>(AppendBlockAsync, MaxBlockBytes);
    }

    public async Task AppendAsync(string jobId, int shardIndex, RequestOutcome outcome, CancellationToken cancellationToken = default)
    {
        var prefix = ShardPrefix(jobId, shardIndex);
        var line = CheckpointLines.Format(outcome);
        try
        {
            await _commits.AppendAsync(prefix, line, cancellationToken);
        }
        catch (Exception e) when (StorageErrors.IsStorageFailure(e))
        {
            throw new CheckpointStoreException(CheckpointStoreFailure.Unavailable,
                $"could not checkpoint {outcome.CustomId} of {jobId}/{shardIndex}: {Describe(e)}", e);
        }
    }

    /// <summary>One group of whole lines as one block; never cancelled between the bytes of a line.</summary>
    private async Task AppendBlockAsync(string prefix, byte[] block)
    {
        var segments = _shardToSegments.GetOrAdd(prefix, _ => new ShardSegments());
        for (int tries = 1; ; tries++)
        {
            int segment = await segments.CurrentAsync(() => FindLastSegmentAsync(prefix, CancellationToken.None));
            var blob = _container.GetAppendBlobClient(SegmentBlob(prefix, segment));
            if (segments.NeedsCreate(segment)) await blob.CreateIfNotExistsAsync();
            segments.Created(segment);
            try
            {
                var info = await blob.AppendBlockAsync(new MemoryStream(block, writable: false));
                if (info.Value.BlobCommittedBlockCount >= _blocksPerBlob) segments.Advance(segment);
                return;
            }
            catch (RequestFailedException e) when (e.ErrorCode == "BlockCountExceedsLimit" && tries < MaxAppendTries) { segments.Advance(segment); }
            catch (RequestFailedException e) when (e.Status == 404 && tries < MaxAppendTries) { segments.Forget(segment); }
        }
    }

    public async IAsyncEnumerable<RequestOutcome> ReadShardAsync(string jobId, int shardIndex, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var name in await ListAsync(ShardPrefix(jobId, shardIndex), cancellationToken))
            foreach (var outcome in await ReadBlobAsync(name, cancellationToken))
                yield return outcome;
    }

    public async IAsyncEnumerable<RequestOutcome> ReadJobAsync(string jobId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // names sort as shard, then segment: {jobId}/000000.0000.jsonl, {jobId}/000000.0001.jsonl, {jobId}/000001.0000.jsonl
        foreach (var name in await ListAsync($"{CheckJobId(jobId)}/", cancellationToken))
            foreach (var outcome in await ReadBlobAsync(name, cancellationToken))
                yield return outcome;
    }

    public async Task<IReadOnlySet<string>> GetDoneCustomIdsAsync(string jobId, int shardIndex, CancellationToken cancellationToken = default)
    {
        var done = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var outcome in ReadShardAsync(jobId, shardIndex, cancellationToken)) done.Add(outcome.CustomId);
        return done;
    }

    private async Task<int> FindLastSegmentAsync(string prefix, CancellationToken cancellationToken)
    {
        var names = await ListAsync(prefix, cancellationToken);
        return names.Count == 0 ? 0 : int.Parse(names[^1].AsSpan(prefix.Length, 4));
    }

    private async Task<List<string>> ListAsync(string prefix, CancellationToken cancellationToken)
    {
        var names = new List<string>();
        try
        {
            await foreach (var item in _container.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix }, cancellationToken))
                if (item.Name.EndsWith(".jsonl", StringComparison.Ordinal)) names.Add(item.Name);
        }
        catch (RequestFailedException e) when (e.ErrorCode == "ContainerNotFound") { return names; }
        catch (Exception e) when (StorageErrors.IsStorageFailure(e))
        {
            throw new CheckpointStoreException(CheckpointStoreFailure.Unavailable, $"could not list checkpoints {prefix}: {Describe(e)}", e);
        }
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    private async Task<List<RequestOutcome>> ReadBlobAsync(string name, CancellationToken cancellationToken)
    {
        var outcomes = new List<RequestOutcome>();
        try
        {
            var download = await _container.GetBlobClient(name).DownloadStreamingAsync(cancellationToken: cancellationToken);
            await using var stream = download.Value.Content;
            await foreach (var line in PhysicalLineReader.ReadAsync(stream, 0, 1, cancellationToken: cancellationToken))
                if (CheckpointLines.TryParse(line) is { } outcome) outcomes.Add(outcome);
        }
        catch (RequestFailedException e) when (StorageErrors.IsNotFound(e)) { } // deleted since the listing
        catch (Exception e) when (StorageErrors.IsStorageFailure(e))
        {
            throw new CheckpointStoreException(CheckpointStoreFailure.Unavailable, $"could not read checkpoints {name}: {Describe(e)}", e);
        }
        return outcomes;
    }

    private static string ShardPrefix(string jobId, int shardIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shardIndex);
        return $"{CheckJobId(jobId)}/{shardIndex:D6}.";
    }

    private static string SegmentBlob(string shardPrefix, int segment) => $"{shardPrefix}{segment:D4}.jsonl";

    private static string CheckJobId(string jobId) => JobIds.IsValid(jobId)
        ? jobId
        : throw new CheckpointStoreException(CheckpointStoreFailure.InvalidName, $"invalid job id \"{jobId}\"");

    private static string Describe(Exception e) => e is RequestFailedException r ? $"{StorageErrors.Describe(r)}: {StorageErrors.FirstLine(r.Message)}" : e.Message;

    /// <summary>This process's view of a shard's segments: the one appends go to and the highest known to exist.</summary>
    private sealed class ShardSegments
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        private int _current = -1;
        private int _created = -1;

        public async Task<int> CurrentAsync(Func<Task<int>> findLast)
        {
            if (Volatile.Read(ref _current) is var known and >= 0) return known;
            await _gate.WaitAsync();
            try
            {
                if (_current < 0) _current = await findLast();
                return _current;
            }
            finally { _gate.Release(); }
        }

        public bool NeedsCreate(int segment) => Volatile.Read(ref _created) < segment;

        public void Created(int segment)
        {
            for (int seen = Volatile.Read(ref _created); seen < segment; seen = Volatile.Read(ref _created))
                if (Interlocked.CompareExchange(ref _created, segment, seen) == seen) return;
        }

        public void Advance(int full) => Interlocked.CompareExchange(ref _current, full + 1, full);

        /// <summary>The segment was deleted under us: create it again on the next append.</summary>
        public void Forget(int segment) => Interlocked.CompareExchange(ref _created, segment - 1, segment);
    }
}

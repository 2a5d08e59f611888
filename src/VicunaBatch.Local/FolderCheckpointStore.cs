using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Local;

/// <summary>Options of <see cref="FolderCheckpointStore"/>.</summary>
public sealed class FolderCheckpointStoreOptions
{
    /// <summary>Folder of checkpoint files "{root}/{jobId}/{shard:D6}.jsonl" (created if missing). Required.</summary>
    public required string RootPath { get; init; }

    /// <summary>fsync each group of outcomes written, so a finished request survives power loss. Default true.</summary>
    public bool FlushToDisk { get; init; } = true;
}

/// <summary>
/// <see cref="ICheckpointStore"/> as one JSON-lines file per shard. Appends to a file are written in order, the
/// outcomes that arrive while the file's previous write is going on together in the next (<see cref="GroupCommit{TKey}"/>:
/// one write call and one fsync for a step's worth of finished requests). A torn line left by a killed process is skipped by readers;
/// the first append of this process to such a file starts a new line first, so later outcomes stay intact.
/// </summary>
public sealed class FolderCheckpointStore : ICheckpointStore
{
    private readonly string _root;
    private readonly FolderCheckpointStoreOptions _options;
    private readonly GroupCommit<string> _commits;
    private readonly ConcurrentDictionary<string, bool> _repairedPaths = new(StringComparer.Ordinal);

    public FolderCheckpointStore(FolderCheckpointStoreOptions options)
    {
        _options = options;
        _root = Path.GetFullPath(options.RootPath);
        Directory.CreateDirectory(_root);
        _commits = new GroupCommit<string>(WriteAsync);
    }

    public async Task AppendAsync(string jobId, int shardIndex, RequestOutcome outcome, CancellationToken cancellationToken = default)
    {
        var path = ShardPath(jobId, shardIndex);
        var line = CheckpointLines.Format(outcome);
        try
        {
            await _commits.AppendAsync(path, line, cancellationToken);
        }
        catch (IOException e)
        {
            throw new CheckpointStoreException(CheckpointStoreFailure.Unavailable, $"could not checkpoint {outcome.CustomId} of {jobId}/{shardIndex}: {e.Message}", e);
        }
    }

    /// <summary>One group of lines: one write call, then one fsync.</summary>
    private async Task WriteAsync(string path, byte[] lines)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await using var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        bool torn = _repairedPaths.TryAdd(path, true) && file.Length > 0 && await LastByteAsync(path) != (byte)'\n';
        var bytes = torn ? [(byte)'\n', .. lines] : lines;
        await file.WriteAsync(bytes, CancellationToken.None);
        if (_options.FlushToDisk) file.Flush(flushToDisk: true);
    }

    public async IAsyncEnumerable<RequestOutcome> ReadShardAsync(string jobId, int shardIndex, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var path = ShardPath(jobId, shardIndex);
        if (!File.Exists(path)) yield break;
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 64 * 1024, useAsync: true);
        await foreach (var line in PhysicalLineReader.ReadAsync(file, 0, 1, cancellationToken: cancellationToken))
            if (CheckpointLines.TryParse(line) is { } outcome) yield return outcome;
    }

    public async IAsyncEnumerable<RequestOutcome> ReadJobAsync(string jobId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var folder = Path.Combine(_root, CheckJobId(jobId));
        if (!Directory.Exists(folder)) yield break;
        var shardIndexes = Directory.EnumerateFiles(folder, "*.jsonl")
            .Select(p => int.TryParse(Path.GetFileNameWithoutExtension(p), out var i) ? i : -1)
            .Where(i => i >= 0).Order().ToList();
        foreach (var shardIndex in shardIndexes)
            await foreach (var outcome in ReadShardAsync(jobId, shardIndex, cancellationToken))
                yield return outcome;
    }

    public async Task<IReadOnlySet<string>> GetDoneCustomIdsAsync(string jobId, int shardIndex, CancellationToken cancellationToken = default)
    {
        var done = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var outcome in ReadShardAsync(jobId, shardIndex, cancellationToken)) done.Add(outcome.CustomId);
        return done;
    }

    private static async Task<byte> LastByteAsync(string path)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        file.Position = file.Length - 1;
        return (byte)file.ReadByte();
    }

    private string ShardPath(string jobId, int shardIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shardIndex);
        return Path.Combine(_root, CheckJobId(jobId), $"{shardIndex:D6}.jsonl");
    }

    private static string CheckJobId(string jobId) => JobIds.IsValid(jobId)
        ? jobId
        : throw new CheckpointStoreException(CheckpointStoreFailure.InvalidName, $"invalid job id \"{jobId}\"");
}

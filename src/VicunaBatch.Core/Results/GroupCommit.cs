namespace VicunaBatch.Core.Results;

/// <summary>
/// Group commit for append-only targets (a checkpoint file, an append blob): lines appended to one target while its
/// previous write is still going on are written together by the next, in one write and one flush, so a burst of
/// finished requests costs one fsync (or one HTTP call) instead of one each. Every caller's task still completes
/// only once its own line is durable, and lines reach a target in the order they were appended. A failed write fails
/// the task of every line in it; those lines may or may not have landed (appends are at-least-once).
/// </summary>
public sealed class GroupCommit<TKey> where TKey : notnull
{
    private readonly Func<TKey, byte[], Task> _write;
    private readonly int _maxBatchBytes;
    private readonly Dictionary<TKey, Target> _keyToTarget = [];

    /// <param name="write">Writes bytes to a target durably: whole lines, in the order they were appended, never two
    /// writes at once for one target. It gets no cancellation: a line is never left half written.</param>
    /// <param name="maxBatchBytes">Most bytes of lines in one write; a line larger than that goes alone.</param>
    public GroupCommit(Func<TKey, byte[], Task> write, int maxBatchBytes = 4 << 20)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchBytes, 1);
        _write = write;
        _maxBatchBytes = maxBatchBytes;
    }

    /// <summary>
    /// Queues <paramref name="line"/> (its bytes, newline included) for <paramref name="key"/>; completes when it is
    /// written. Cancelling stops the wait, not the write: a queued line is written all the same.
    /// </summary>
    public Task AppendAsync(TKey key, byte[] line, CancellationToken cancellationToken = default)
    {
        var appended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool startWriter;
        lock (_keyToTarget)
        {
            if (!_keyToTarget.TryGetValue(key, out var target))
            {
                _keyToTarget[key] = target = new Target();
            }
            target.Pending.Enqueue((line, appended));
            startWriter = !target.IsWriting;
            target.IsWriting = true;
        }
        if (startWriter)
        {
            // off the caller's thread: the writer keeps going while lines keep arriving
            _ = Task.Run(() => WriteAllAsync(key));
        }
        return appended.Task.WaitAsync(cancellationToken);
    }

    private async Task WriteAllAsync(TKey key)
    {
        while (true)
        {
            var batch = new List<(byte[] Line, TaskCompletionSource Appended)>();
            lock (_keyToTarget)
            {
                var target = _keyToTarget[key];
                long bytes = 0;
                while (target.Pending.TryPeek(out var next) && (batch.Count == 0 || bytes + next.Line.Length <= _maxBatchBytes))
                {
                    batch.Add(target.Pending.Dequeue());
                    bytes += next.Line.Length;
                }
                if (batch.Count == 0)
                {
                    // idle targets are dropped: a job's shards come and go
                    _keyToTarget.Remove(key);
                    return;
                }
            }
            try
            {
                await _write(key, Concat(batch));
                foreach (var (_, appended) in batch) appended.TrySetResult();
            }
            catch (Exception e)
            {
                foreach (var (_, appended) in batch) appended.TrySetException(e);
            }
        }
    }

    private static byte[] Concat(List<(byte[] Line, TaskCompletionSource Appended)> batch)
    {
        if (batch.Count == 1) return batch[0].Line;
        var bytes = new byte[batch.Sum(b => b.Line.Length)];
        int at = 0;
        foreach (var (line, _) in batch)
        {
            line.CopyTo(bytes, at);
            at += line.Length;
        }
        return bytes;
    }

    private sealed class Target
    {
        public Queue<(byte[] Line, TaskCompletionSource Appended)> Pending { get; } = new();

        public bool IsWriting { get; set; }
    }
}

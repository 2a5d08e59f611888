using System.Collections.Concurrent;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Local.Tests;

/// <summary>Issue 23: a running batch's request_counts and usage move per finished request, not per shard, from the
/// progress record its shard's worker rewrites at most once per <c>ProgressInterval</c>.</summary>
public sealed class ShardProgressTests : IDisposable
{
    private readonly LocalRig _rig = new(requestsPerShard: 4);

    public void Dispose() => _rig.Dispose();

    [Fact]
    public async Task RunningShard_countsAndUsageMovePerRequest_atMostOneProgressWritePerInterval()
    {
        await _rig.SubmitAsync("job1", string.Concat(new[] { "a", "b", "c", "d" }.Select(id => $"{{\"custom_id\":\"{id}\",\"prompt\":\"{id}{id}\"}}\n")));
        var executor = new GatedExecutor();
        var message = (await _rig.Queue.ReceiveAsync(1)).Single();
        var processing = _rig.Processor(executor).ProcessAsync(message); // ProgressInterval: the default 1 s
        var batches = new TenantBatches(_rig.Blobs, _rig.Jobs, _rig.Submitter, _rig.Time);

        executor.Release("a");
        Assert.Equal((new RequestCounts(4, 1, 0), new BatchUsage(2, 2, 4)), await CountsWhenAsync(batches, c => c.Completed == 1));
        executor.Release("b"); // within the interval of the last write: counted, not written
        await CheckpointedAsync(2);
        Assert.Equal((new RequestCounts(4, 1, 0), new BatchUsage(2, 2, 4)), await CountsAsync(batches));

        _rig.Time.Advance(TimeSpan.FromSeconds(1));
        executor.Release("c");
        Assert.Equal((new RequestCounts(4, 3, 0), new BatchUsage(6, 6, 12)), await CountsWhenAsync(batches, c => c.Completed == 3));
        executor.Release("d");
        await processing;

        Assert.Equal((new RequestCounts(4, 4, 0), new BatchUsage(8, 8, 16)), await CountsAsync(batches)); // the report's
    }

    /// <summary>While the finalizer merges the files (finalizing is saved before, completed after), the batch shows the
    /// finished counts and usage, not the zeros stored at submit.</summary>
    [Fact]
    public async Task FinalizingJob_showsTheCountsOfItsShardReports()
    {
        await _rig.SubmitAsync("job1", "{\"custom_id\":\"a\",\"prompt\":\"aa\"}\n{\"custom_id\":\"b\",\"prompt\":\"boom\"}\n");
        await _rig.DrainAsync(_rig.Processor(new EchoExecutor()));
        var stored = (await _rig.Jobs.GetAsync("job1"))!;
        JobStateMachine.Transition(stored.Job, JobStatus.Finalizing, _rig.Time.GetUtcNow()); // as the finalizer saves it before the merge
        await _rig.Jobs.SaveAsync(stored.Job, stored.ETag);

        var batches = new TenantBatches(_rig.Blobs, _rig.Jobs, _rig.Submitter, _rig.Time);

        Assert.Equal((new RequestCounts(2, 1, 1), new BatchUsage(2, 2, 4)), await CountsAsync(batches));
    }

    private async Task<(RequestCounts, BatchUsage)> CountsAsync(TenantBatches batches)
    {
        var job = await batches.WithCurrentProgressAsync((await _rig.Jobs.GetAsync("job1"))!.Job);
        return (job.RequestCounts, job.Usage);
    }

    /// <summary>The counts once <paramref name="until"/> holds (the progress write follows the checkpoint), within 10 s.</summary>
    private async Task<(RequestCounts, BatchUsage)> CountsWhenAsync(TenantBatches batches, Func<RequestCounts, bool> until)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var counts = await CountsAsync(batches);
            if (until(counts.Item1) || DateTime.UtcNow > deadline) return counts;
            await Task.Delay(10);
        }
    }

    private async Task CheckpointedAsync(int numDone)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await _rig.Checkpoints.GetDoneCustomIdsAsync("job1", 0)).Count < numDone && DateTime.UtcNow < deadline) await Task.Delay(10);
        await Task.Delay(50); // the progress count after the checkpoint (which must not write)
    }

    /// <summary>Answers each request (2 prompt tokens, 2 completion tokens) when the test releases its custom_id.</summary>
    private sealed class GatedExecutor : IRequestExecutor
    {
        private readonly ConcurrentDictionary<string, TaskCompletionSource> _gates = new();

        public void Release(string customId) => Gate(customId).TrySetResult();

        public async Task<RequestOutcome> ExecuteAsync(BatchRequest request, CancellationToken cancellationToken = default)
        {
            await Gate(request.CustomId).Task.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
            return RequestOutcome.Success(request, "m", "ok", FinishReason.Stop, request.Prompt!.Length, 2, LocalRig.Start);
        }

        private TaskCompletionSource Gate(string customId) => _gates.GetOrAdd(customId, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));
    }
}

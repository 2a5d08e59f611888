using System.Text;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Local.Tests;

/// <summary>
/// The stores failing under a job: transiently (the call is retried, as the queue redelivers a shard or the trigger
/// re-runs the finalizer, and the job ends whole per the checker) and permanently (the job fails with the store's
/// reason and no half-written file is presented as its output).
/// </summary>
public sealed class StoreFaultTests : IDisposable
{
    private readonly LocalRig _rig = new(requestsPerShard: 4);

    public void Dispose() => _rig.Dispose();

    private static readonly string Input = string.Concat(Enumerable.Range(0, 12).Select(i => $"{{\"custom_id\":\"r{i}\",\"prompt\":\"p{i}\"}}\n"))
        + "{\"custom_id\":\"broken\",\"prompt\":\n";

    [Fact]
    public async Task Checkpoint_store_failing_three_times_then_healing_the_shards_are_redelivered_and_the_job_is_whole()
    {
        await _rig.SubmitAsync("job1", Input);
        var checkpoints = new FlakyCheckpointStore(_rig.Checkpoints, numFailures: 3);
        var processor = new ShardProcessor(_rig.Blobs, checkpoints, _rig.Queue, _rig.Jobs, new EchoExecutor(), _rig.Input,
            new ShardProcessorOptions { MaxDeliveriesWithoutProgress = 5, LockRenewalInterval = TimeSpan.Zero }, _rig.Time);

        var results = await _rig.DrainAsync(processor); // an abandoned shard is visible again at once: drained again

        Assert.Equal(3, checkpoints.NumFailed);
        Assert.Contains(results, r => r.Disposition == ShardDisposition.Abandoned && r.Error is CheckpointStoreException { IsTransient: true });
        Assert.Equal(3, results.Count(r => r.Disposition == ShardDisposition.Completed));
        var ids = new List<string>();
        await foreach (var outcome in _rig.Checkpoints.ReadJobAsync("job1")) ids.Add(outcome.CustomId);
        Assert.Equal(ids.Count, ids.Distinct().Count()); // what a failed delivery had checkpointed was not run again
        Assert.Equal(FinalizeStatus.Finalized, (await _rig.Finalizer.TryFinalizeAsync("job1")).Status);
        await AssertWholeAsync("job1");
    }

    [Fact]
    public async Task Blob_store_refusing_the_output_twice_transiently_the_finalizer_fails_and_its_retry_completes_the_job()
    {
        await _rig.SubmitAsync("job1", Input);
        await _rig.DrainAsync(_rig.Processor(new EchoExecutor()));
        var blobs = new FlakyBlobStore(_rig.Blobs, JobIds.OutputBlob("job1"), BlobStoreFailure.Unavailable, numFailures: 2);
        var finalizer = new JobFinalizer(blobs, new BlobJobStore(blobs), _rig.Checkpoints, _rig.Input, _rig.Time);

        for (var attempt = 1; attempt <= 2; attempt++)
        {
            var e = await Assert.ThrowsAsync<BlobStoreException>(() => finalizer.TryFinalizeAsync("job1"));
            Assert.True(e.IsTransient); // thrown: the Functions trigger retries the message, serve's sweep the job
            Assert.Equal(JobStatus.Finalizing, (await _rig.Jobs.GetAsync("job1"))!.Job.Status);
        }
        var result = await finalizer.TryFinalizeAsync("job1");

        Assert.Equal((FinalizeStatus.Finalized, JobStatus.Completed), (result.Status, result.Job.Status));
        await AssertWholeAsync("job1");
    }

    [Fact]
    public async Task Blob_store_refusing_the_output_for_good_the_job_fails_with_the_reason_and_presents_no_file()
    {
        await _rig.SubmitAsync("job1", Input);
        await _rig.DrainAsync(_rig.Processor(new EchoExecutor()));
        // the output goes first; the errors file, refused, would be the half left behind
        var blobs = new FlakyBlobStore(_rig.Blobs, JobIds.ErrorsBlob("job1"), BlobStoreFailure.Denied, numFailures: int.MaxValue);
        var finalizer = new JobFinalizer(blobs, new BlobJobStore(blobs), _rig.Checkpoints, _rig.Input, _rig.Time);

        var result = await finalizer.TryFinalizeAsync("job1");

        Assert.Equal((FinalizeStatus.Finalized, JobStatus.Failed), (result.Status, result.Job.Status));
        var stored = (await _rig.Jobs.GetAsync("job1"))!.Job;
        Assert.Equal(JobStatus.Failed, stored.Status);
        Assert.Null(stored.OutputFileId);
        Assert.Null(stored.ErrorFileId);
        var error = Assert.Single(stored.Errors!.Data);
        Assert.Equal(JobFinalizer.ResultsNotWrittenCode, error.Code);
        Assert.Contains($"blob {JobIds.ErrorsBlob("job1")}", error.Message);
        Assert.Null(await _rig.Blobs.GetPropertiesAsync(JobIds.OutputBlob("job1"))); // the part already written is gone
        Assert.Null(await _rig.Blobs.GetPropertiesAsync(JobIds.ErrorsBlob("job1")));
        Assert.Equal(FinalizeStatus.Skipped, (await finalizer.TryFinalizeAsync("job1")).Status); // ended: a late event changes nothing
        var checkpointed = 0;
        await foreach (var _ in _rig.Checkpoints.ReadJobAsync("job1")) checkpointed++;
        Assert.Equal(12, checkpointed); // the results themselves are kept
    }

    private async Task AssertWholeAsync(string jobId)
    {
        async Task<Stream> Blob(string name) => new MemoryStream(await _rig.Blobs.ReadBytesAsync(name));
        using var input = new MemoryStream(Encoding.UTF8.GetBytes(Input));
        var report = await new ResultsChecker(_rig.Input).CheckAsync(input, InputFormat.Jsonl,
            await Blob(JobIds.OutputBlob(jobId)), await Blob(JobIds.ErrorsBlob(jobId)), await Blob(JobIds.JobBlob(jobId)));
        Assert.True(report.IsWhole, string.Join("\n", report.Problems));
        Assert.Equal((12, 1), (report.NumValidRequests, report.NumRejectedLines));
    }
}

/// <summary>The real store, except that writes of one blob fail <c>numFailures</c> times with <c>failure</c>.</summary>
internal sealed class FlakyBlobStore(IBlobStore inner, string failingBlob, BlobStoreFailure failure, int numFailures) : IBlobStore
{
    private int _numLeft = numFailures;

    public async Task<BlobProperties> PutAsync(string name, Stream content, BlobCondition condition, CancellationToken cancellationToken = default)
    {
        if (name == failingBlob && Interlocked.Decrement(ref _numLeft) >= 0)
            throw new BlobStoreException(failure, name, $"could not write blob {name}: injected {failure}");
        return await inner.PutAsync(name, content, condition, cancellationToken);
    }

    public Task<Stream> OpenReadAsync(string name, BlobRange? range = null, CancellationToken cancellationToken = default) => inner.OpenReadAsync(name, range, cancellationToken);
    public Task<BlobProperties?> GetPropertiesAsync(string name, CancellationToken cancellationToken = default) => inner.GetPropertiesAsync(name, cancellationToken);
    public IAsyncEnumerable<string> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);
    public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default) => inner.DeleteAsync(name, cancellationToken);
}

/// <summary>The real checkpoint store, except that the first <c>numFailures</c> appends fail as unavailable.</summary>
internal sealed class FlakyCheckpointStore(ICheckpointStore inner, int numFailures) : ICheckpointStore
{
    private readonly int _numFailures = numFailures;
    private int _numLeft = numFailures;

    public int NumFailed => _numFailures - Math.Max(0, Volatile.Read(ref _numLeft));

    public Task AppendAsync(string jobId, int shardIndex, RequestOutcome outcome, CancellationToken cancellationToken = default) =>
        Interlocked.Decrement(ref _numLeft) >= 0
            ? throw new CheckpointStoreException(CheckpointStoreFailure.Unavailable, $"could not checkpoint {outcome.CustomId}: injected outage")
            : inner.AppendAsync(jobId, shardIndex, outcome, cancellationToken);

    public IAsyncEnumerable<RequestOutcome> ReadShardAsync(string jobId, int shardIndex, CancellationToken cancellationToken = default) =>
        inner.ReadShardAsync(jobId, shardIndex, cancellationToken);
    public IAsyncEnumerable<RequestOutcome> ReadJobAsync(string jobId, CancellationToken cancellationToken = default) => inner.ReadJobAsync(jobId, cancellationToken);
    public Task<IReadOnlySet<string>> GetDoneCustomIdsAsync(string jobId, int shardIndex, CancellationToken cancellationToken = default) =>
        inner.GetDoneCustomIdsAsync(jobId, shardIndex, cancellationToken);
}

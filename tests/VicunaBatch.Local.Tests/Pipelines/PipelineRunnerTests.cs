using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Local.Tests.Pipelines;

/// <summary>Overlapping ticks on the local parts: the second tick finds the lock and does nothing (no engine needed).</summary>
public sealed class PipelineRunnerTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 2, 0, 0, TimeSpan.Zero));

    public void Dispose() => _folder.Dispose();

    private sealed class CharTokenizer : IDocumentTokenizer
    {
        public IReadOnlyList<int> Encode(string text) => text.Select(c => (int)c).ToList();

        public string Decode(IReadOnlyList<int> ids) => new(ids.Select(i => (char)i).ToArray());
    }

    /// <summary>Holds each job until <see cref="Release"/>, then hands it back still running.</summary>
    private sealed class GateDriver : IJobDriver
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource<string> Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _gate.TrySetResult();

        public async Task<BatchJob> RunToEndAsync(BatchJob job, CancellationToken cancellationToken = default)
        {
            Entered.TrySetResult(job.Id);
            await _gate.Task.WaitAsync(cancellationToken);
            return job;
        }
    }

    [Fact]
    public async Task RunAsync_overlappingTicks_secondIsLockedAndTheFirstResumesLater()
    {
        Directory.CreateDirectory(_folder.Combine("docs"));
        File.WriteAllText(_folder.Combine("docs/a.txt"), "hello");
        var definition = PipelineDefinition.Parse("""{"name":"n","source":{"folder":"docs"},"prompt":"S: {text}","max_tokens":8,"output":{"folder":"out"},"chunking":{"chunk_tokens":32,"overlap_tokens":4}}""");
        var state = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _folder.Combine("state") });
        var queue = new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = _folder.Combine("queue.db") }, _time);
        var driver = new GateDriver();
        var stages = new PipelineStages(state, new JobSubmitter(state, new BlobJobStore(state), new SharedWorkQueue(queue), LocalRig.Models, new InputOptions(), _time), driver);
        var parts = new PipelineParts(new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _folder.Combine("docs") }),
            new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _folder.Combine("out") }), state, stages, new CharTokenizer(), 64, null);

        var first = new PipelineRunner(definition, parts, _time).RunAsync();
        var jobId = await driver.Entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        _time.Advance(TimeSpan.FromSeconds(1));
        var second = await new PipelineRunner(definition, parts, _time).RunAsync();
        driver.Release();
        var firstResult = await first;

        Assert.Equal((PipelineRunStatus.Locked, "pl-n-20261201T020001000"), (second.Status, second.RunId));
        Assert.Equal((PipelineRunStatus.InProgress, "pl-n-20261201T020000000"), (firstResult.Status, firstResult.RunId));
        Assert.Equal("pl-n-20261201T020000000-s0", jobId);
        Assert.Equal(1, await queue.CountAsync()); // one shard queued, once
        var current = await new PipelineState(state, "n", _time).ReadCurrentRunAsync();
        Assert.Equal(("pl-n-20261201T020000000", "a.txt"), (current!.RunId, Assert.Single(current.Files).Path));
        Assert.Null(await new PipelineState(state, "n", _time).ReadLockAsync());
        Assert.Same(PipelineWatermark.Empty, await new PipelineState(state, "n", _time).ReadWatermarkAsync());
    }
}

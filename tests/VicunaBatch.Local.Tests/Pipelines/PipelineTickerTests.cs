using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Local.Tests.Pipelines;

/// <summary>The scheduled host's tick on the local parts, with a hand-moved clock; stage jobs are left running (no engine).</summary>
public sealed class PipelineTickerTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 1, 0, 0, TimeSpan.Zero));
    private readonly FolderBlobStore _state;
    private readonly PipelineParts _parts;

    public PipelineTickerTests()
    {
        Directory.CreateDirectory(_folder.Combine("docs"));
        File.WriteAllText(_folder.Combine("docs/a.txt"), "hello");
        _state = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _folder.Combine("state") });
        var queue = new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = _folder.Combine("queue.db") }, _time);
        var jobs = new BlobJobStore(_state);
        // the stage's job never ends within a tick: every run stays in progress
        var stages = new PipelineStages(_state, new JobSubmitter(_state, jobs, new SharedWorkQueue(queue), LocalRig.Models, new InputOptions(), _time),
            new PollingJobDriver(jobs, _time, new PollingJobDriverOptions { MaxWait = TimeSpan.Zero }));
        _parts = new PipelineParts(new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _folder.Combine("docs") }),
            new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _folder.Combine("out") }), _state, stages, new CharTokenizer(), 64, null);
    }

    public void Dispose() => _folder.Dispose();

    private sealed class CharTokenizer : IDocumentTokenizer
    {
        public IReadOnlyList<int> Encode(string text) => text.Select(c => (int)c).ToList();

        public string Decode(IReadOnlyList<int> ids) => new(ids.Select(i => (char)i).ToArray());
    }

    private static PipelineDefinition Definition(string name, string? schedule) => PipelineDefinition.Parse(
        $$"""{"name":"{{name}}","source":{"folder":"docs"},"prompt":"S: {text}","max_tokens":8,"output":{"folder":"out"},"chunking":{"chunk_tokens":32,"overlap_tokens":4}{{(schedule is null ? "" : $",\"schedule\":\"{schedule}\"")}}}""");

    [Fact]
    public async Task TickAsync_runsAtTheScheduleThenResumesTheUnfinishedRunOnEachTick()
    {
        var nightly = Definition("nightly", "0 2 * * *");
        var manual = Definition("manual", null);
        int numRunners = 0;
        var ticker = new PipelineTicker(_state, d => { numRunners++; return new PipelineRunner(d, _parts, _time); }, _time);
        PipelineDefinition[] definitions = [nightly, manual];

        var first = await ticker.TickAsync(definitions); // 01:00 — marks the time only
        _time.Advance(TimeSpan.FromMinutes(59));
        var beforeTwo = await ticker.TickAsync(definitions); // 01:59
        _time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(30));
        var atTwo = await ticker.TickAsync(definitions); // 02:00:30 — due
        _time.Advance(TimeSpan.FromMinutes(1));
        var resumed = await ticker.TickAsync(definitions); // 02:01:30 — not due, but the run is unfinished

        Assert.All(first.Concat(beforeTwo), r => Assert.Equal(PipelineTickOutcome.NotDue, r.Outcome));
        Assert.Equal(PipelineTickOutcome.NotDue, atTwo[1].Outcome);
        Assert.Equal((PipelineTickOutcome.Ran, PipelineRunStatus.InProgress, "pl-nightly-20261201T020030000"),
            (atTwo[0].Outcome, atTwo[0].Run!.Status, atTwo[0].Run!.RunId));
        Assert.Equal((PipelineTickOutcome.Ran, PipelineRunStatus.InProgress, "pl-nightly-20261201T020030000"),
            (resumed[0].Outcome, resumed[0].Run!.Status, resumed[0].Run!.RunId));
        Assert.Equal(2, numRunners);
        Assert.Equal(new PipelineScheduleMark(_time.GetUtcNow()),
            System.Text.Json.JsonSerializer.Deserialize<PipelineScheduleMark>(await _state.ReadBytesAsync(PipelineTicker.MarkBlob("nightly")), JsonDefaults.Options));
        Assert.False(await _state.ExistsAsync(PipelineTicker.MarkBlob("manual")));
    }

    [Fact]
    public async Task TickAsync_failedRun_isResumedOnlyAfterTheRetryDelay()
    {
        var nightly = Definition("nightly", "0 2 * * *");
        await new PipelineState(_state, "nightly", _time).WriteCurrentRunAsync(new PipelineCurrentRun("pl-nightly-20261201T000000000", _time.GetUtcNow(), []));
        int numAttempts = 0;
        var ticker = new PipelineTicker(_state, _ => { numAttempts++; throw new IOException("output unavailable"); }, _time,
            new PipelineTickerOptions { RetryDelay = TimeSpan.FromMinutes(5) });

        var failed = Assert.Single(await ticker.TickAsync([nightly]));
        _time.Advance(TimeSpan.FromMinutes(4));
        var waiting = Assert.Single(await ticker.TickAsync([nightly]));
        _time.Advance(TimeSpan.FromMinutes(1));
        var retried = Assert.Single(await ticker.TickAsync([nightly]));

        Assert.Equal((PipelineTickOutcome.Failed, "output unavailable"), (failed.Outcome, failed.Error));
        Assert.Equal(PipelineTickOutcome.NotDue, waiting.Outcome);
        Assert.Equal(PipelineTickOutcome.Failed, retried.Outcome);
        Assert.Equal(2, numAttempts);
    }

    [Fact]
    public async Task RunToEndAsync_jobEndsWhileWaiting_returnsTheEndedJob()
    {
        var jobs = new BlobJobStore(_state);
        var job = new BatchJob { Id = "job-1", Endpoint = BatchEndpoints.CompletionsUrl, InputFileId = "inputs/job-1.jsonl", Status = JobStatus.InProgress };
        var etag = await jobs.SaveAsync(job, null);
        var driver = new PollingJobDriver(jobs, TimeProvider.System, new PollingJobDriverOptions { MaxWait = TimeSpan.FromSeconds(10), PollInterval = TimeSpan.FromMilliseconds(20) });

        var waiting = driver.RunToEndAsync(job);
        var done = new BatchJob { Id = "job-1", Endpoint = BatchEndpoints.CompletionsUrl, InputFileId = "inputs/job-1.jsonl", Status = JobStatus.Completed };
        await jobs.SaveAsync(done, etag);

        Assert.Equal(JobStatus.Completed, (await waiting.WaitAsync(TimeSpan.FromSeconds(10))).Status);
    }
}

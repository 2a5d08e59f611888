using VicunaBatch.Core.Services;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;
using VicunaBatch.Testing;

namespace VicunaBatch.Execution.Tests;

/// <summary>
/// Several engines of one model fed from its one queue (<see cref="EngineWorkers"/>), as one per GPU are: here two CPU
/// engines of the committed tiny model over a real data folder, each loaded by <see cref="LoadedModel.OpenEach"/>.
/// </summary>
public sealed class EngineWorkersTests : IDisposable
{
    private static readonly EngineOptions Options = new() { MaxBatchSize = 4, NumThreads = 1 };
    private static readonly string TinyPath = Path.Combine(Checkout.Root, "models", "tiny");

    private readonly ExecutionFolder _folder = new();

    /// <summary>Each engine holds one shard at a time, so the second takes the shards the first is not holding.</summary>
    private EngineWorkerOptions OneShardEach => new()
    {
        Pump = new ShardPumpOptions { MinConcurrentShards = 1, MaxConcurrentShards = 1, PollInterval = TimeSpan.FromMilliseconds(10) }, Input = _folder.Input,
    };

    private static IEnumerable<string> Prompts(int count) => Enumerable.Range(0, count).Select(i => ExecutionFolder.Prompt($"r{i}", 2 + i % 5));

    [Fact]
    public async Task Two_engines_take_shards_from_one_queue_and_answer_every_request_as_one_engine_does()
    {
        var job = await _folder.SubmitAsync(Prompts(48)); // 6 shards of 8, greedy
        var models = LoadedModel.OpenEach(PackageFiles.InDirectory(TinyPath), [Options, Options]);
        try
        {
            var settledBy = new List<int>[] { [], [] };
            await using var workers = new EngineWorkers(models, _folder.Ports, OneShardEach, TimeProvider.System,
                hooks: engine => new EngineWorkerHooks(Settled: r => { lock (settledBy) settledBy[engine].Add(r.Shard!.ShardIndex); }));
            await workers.RunAsync(async ct => (await _folder.ReadCheckpointedIdsAsync(job.Id)).Count == 48).WaitAsync(TimeSpan.FromSeconds(120));

            Assert.Equal(["engine 0", "engine 1"], workers.Labels);
            Assert.All(settledBy, shards => Assert.NotEmpty(shards)); // both engines took work from the one queue
            Assert.Equal(Enumerable.Range(0, 6), settledBy.SelectMany(s => s).Order());
            Assert.Equal(48, workers.NumSucceeded);
            Assert.Equal(workers.All.Select(w => w.Executor.NumSucceeded), settledBy.Select(s => 8L * s.Count));
        }
        finally
        {
            foreach (var model in models) model.Dispose();
        }

        // the same job on one engine: the same text for every greedy request
        using var alone = new ExecutionFolder();
        var again = await alone.SubmitAsync(Prompts(48));
        using (var model = LoadedModel.Open(TinyPath, Options))
        {
            await using var one = new EngineWorkers([model], alone.Ports, OneShardEach, TimeProvider.System);
            await one.RunAsync(async ct => (await alone.ReadCheckpointedIdsAsync(again.Id)).Count == 48).WaitAsync(TimeSpan.FromSeconds(120));
        }
        var split = await TextsAsync(_folder, job.Id);
        Assert.Equal(48, split.Count);
        Assert.Equal(await TextsAsync(alone, again.Id), split);
    }

    [Fact]
    public async Task Stopping_two_engines_settles_the_shards_they_hold_and_leaves_the_rest_queued_and_a_later_run_finishes_the_job_once()
    {
        var job = await _folder.SubmitAsync(Prompts(48));
        var models = LoadedModel.OpenEach(PackageFiles.InDirectory(TinyPath), [Options, Options]);
        try
        {
            using var stopTaking = new CancellationTokenSource();
            var settled = new List<ShardResult>();
            await using (var workers = new EngineWorkers(models, _folder.Ports, OneShardEach, TimeProvider.System,
                hooks: _ => new EngineWorkerHooks(Settled: r => { lock (settled) { settled.Add(r); stopTaking.Cancel(); } })))
            {
                await workers.RunAsync(_ => Task.FromResult(false), stopTaking.Token).WaitAsync(TimeSpan.FromSeconds(120));
            }
            // each engine held at most one shard when the first settled: those settled whole, no other was taken
            Assert.InRange(settled.Count, 1, 2);
            Assert.All(settled, r => Assert.Equal(ShardDisposition.Completed, r.Disposition));
            var checkpointed = await _folder.ReadCheckpointedIdsAsync(job.Id);
            Assert.Equal(8 * settled.Count, checkpointed.Count);
            Assert.Equal(checkpointed.Count, checkpointed.Distinct().Count());

            await using (var workers = new EngineWorkers(models, _folder.Ports, OneShardEach, TimeProvider.System))
            {
                await workers.RunAsync(async ct => (await _folder.ReadCheckpointedIdsAsync(job.Id)).Count == 48).WaitAsync(TimeSpan.FromSeconds(120));
            }
        }
        finally
        {
            foreach (var model in models) model.Dispose();
        }
        var ids = await _folder.ReadCheckpointedIdsAsync(job.Id);
        Assert.Equal(Enumerable.Range(0, 48).Select(i => $"r{i}").Order(), ids.Order()); // every request once: none lost, none run twice
        Assert.Empty(await _folder.Ports.Work.ReceiveAsync(16));
    }

    private static async Task<SortedDictionary<string, string?>> TextsAsync(ExecutionFolder folder, string jobId)
    {
        var texts = new SortedDictionary<string, string?>(StringComparer.Ordinal);
        await foreach (var outcome in folder.Ports.Checkpoints.ReadJobAsync(jobId)) texts[outcome.CustomId] = outcome.Text;
        return texts;
    }

    public void Dispose() => _folder.Dispose();
}

using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.Execution.Tests;

/// <summary>The engine chain on the committed tiny model, over a real data folder, with the control plane beside it.</summary>
public sealed class EngineWorkerTests : IDisposable
{
    private readonly ExecutionFolder _folder = new();
    private readonly LoadedModel _model = LoadedModel.Open(Path.Combine(Checkout.Root, "models", "tiny"), new EngineOptions { MaxBatchSize = 4, NumThreads = 1 });

    [Fact]
    public async Task RunAsync_announces_each_settled_shard_and_the_shard_done_handler_finalizes_the_job_from_those_events()
    {
        var job = await _folder.SubmitAsync(Enumerable.Range(0, 20).Select(i => ExecutionFolder.Prompt($"r{i}", 3))); // 3 shards
        var handler = _folder.Services.GetRequiredService<ShardDoneHandler>();
        var shardDone = _folder.Services.GetRequiredService<ControlQueues>().ShardDone;
        var counted = new CompletionCountingQueue(shardDone, 3); // one event a shard
        var ended = new TaskCompletionSource<BatchJob>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var settled = new List<ShardResult>();

        await using (var worker = new EngineWorker(_model, _folder.Ports, EngineWorkerOptions.OneMachine(2, input: _folder.Input), TimeProvider.System,
            hooks: new EngineWorkerHooks(Settled: r => { lock (settled) settled.Add(r); })))
        {
            var control = handler.RunAsync(counted, e => { if (e.Job.Id == job.Id) ended.TrySetResult(e.Job); }, stop.Token);
            var working = worker.RunAsync(_ => Task.FromResult(ended.Task.IsCompleted), cancellationToken: stop.Token);
            await working;
            var finished = await ended.Task.WaitAsync(stop.Token);
            // The job ends at whichever event finds every shard settled, perhaps the first: the reader is stopped only
            // once it has completed all three.
            await counted.AllCompleted.WaitAsync(stop.Token);
            await stop.CancelAsync();
            await control;

            Assert.Equal(JobStatus.Completed, finished.Status);
            Assert.Equal((20, 20, 0), (finished.RequestCounts.Total, finished.RequestCounts.Completed, finished.RequestCounts.Failed));
            Assert.Equal(20, worker.Executor.NumSucceeded);
        }
        Assert.Equal([0, 1, 2], settled.Select(r => r.Shard!.ShardIndex).Order());
        Assert.All(settled, r => Assert.Equal(ShardDisposition.Completed, r.Disposition));
        Assert.Empty(await shardDone.ReceiveAsync(16)); // every event was read and completed
    }

    /// <summary>The worker is told its model's name once, by its ports (the name its queue is the queue of): its outputs
    /// carry that name, not the package's.</summary>
    [Fact]
    public async Task EngineWorker_outputsNameTheModelOfItsPorts()
    {
        await using var worker = new EngineWorker(_model, _folder.Ports with { Model = "tiny-served-as" }, EngineWorkerOptions.OneMachine(1, input: _folder.Input), TimeProvider.System);

        Assert.Equal(("tiny-served-as", "tiny"), (worker.Executor.ModelName, _model.Name));
    }

    [Fact]
    public async Task RunAsync_with_stopTaking_cancelled_finishes_the_held_shards_and_takes_no_more()
    {
        var job = await _folder.SubmitAsync(Enumerable.Range(0, 24).Select(i => ExecutionFolder.Prompt($"r{i}", 3))); // 3 shards
        using var stopTaking = new CancellationTokenSource();
        var settled = 0;
        await using var worker = new EngineWorker(_model, _folder.Ports,
            new EngineWorkerOptions
            {
                Pump = new ShardPumpOptions { MinConcurrentShards = 1, MaxConcurrentShards = 1, PollInterval = TimeSpan.FromMilliseconds(10) }, Input = _folder.Input,
            },
            TimeProvider.System, hooks: new EngineWorkerHooks(Settled: _ => { if (Interlocked.Increment(ref settled) == 1) stopTaking.Cancel(); }));

        await worker.RunAsync(_ => Task.FromResult(false), stopTaking.Token).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(1, settled); // one shard held at a time: it finished, no second was taken
        Assert.Equal(8, (await _folder.ReadCheckpointedIdsAsync(job.Id)).Count);
        Assert.Equal(2, (await _folder.Ports.Work.ReceiveAsync(16)).Count);
    }

    public void Dispose()
    {
        _model.Dispose();
        _folder.Dispose();
    }
}

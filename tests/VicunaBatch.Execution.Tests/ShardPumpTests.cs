using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Execution.Tests;

/// <summary>The pump's prefetch bound and its tolerance of a queue that is briefly unavailable, over the real SQLite
/// queue and folder stores; the executor is a test one that holds requests until released.</summary>
public sealed class ShardPumpTests : IDisposable
{
    private readonly ExecutionFolder _folder = new();

    [Fact]
    public async Task WantsWork_bounds_prefetch_to_what_the_engine_asks_for()
    {
        // 6 shards of 8 requests; the "engine" wants work while fewer than 10 requests are in flight
        var job = await _folder.SubmitAsync(Enumerable.Range(0, 48).Select(i => ExecutionFolder.Prompt($"r{i}", 4)));
        var executor = new HeldExecutor();
        var pump = new ShardPump(_folder.Ports.Work, Processor(executor), Options(maxShards: 6),
            new ShardPumpHooks(WantsWork: () => executor.NumInFlight < 10));
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var settled = new List<ShardResult>();
        var running = pump.RunAsync((r, _) => { lock (settled) settled.Add(r); return Task.CompletedTask; },
            _ => Task.FromResult(executor.NumCompleted == 48), cancellationToken: stop.Token);

        await executor.WaitForInFlightAsync(16);
        await Task.Delay(200); // many poll intervals: no third shard is taken while 16 requests wait
        Assert.Equal(16, executor.NumInFlight);
        Assert.Equal(4, await VisibleCountAsync());

        executor.ReleaseAll();
        await running;
        Assert.Equal(6, settled.Count(r => r.Disposition == ShardDisposition.Completed));
        Assert.Equal(48, (await _folder.ReadCheckpointedIdsAsync(job.Id)).Distinct().Count());
    }

    [Fact]
    public async Task MinConcurrentShards_are_held_whatever_WantsWork_says_and_more_only_while_it_asks()
    {
        // 8 shards of 8 requests; at least 3 held; the "engine" wants work while fewer than 40 requests are in flight
        var job = await _folder.SubmitAsync(Enumerable.Range(0, 64).Select(i => ExecutionFolder.Prompt($"r{i}", 4)));
        var executor = new HeldExecutor();
        var wantsMore = false;
        var pump = new ShardPump(_folder.Ports.Work, Processor(executor),
            new ShardPumpOptions { MinConcurrentShards = 3, MaxConcurrentShards = 8, PollInterval = TimeSpan.FromMilliseconds(10) },
            new ShardPumpHooks(WantsWork: () => Volatile.Read(ref wantsMore) && executor.NumInFlight < 40));
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var running = pump.RunAsync((_, _) => Task.CompletedTask, _ => Task.FromResult(executor.NumCompleted == 64), cancellationToken: stop.Token);

        await executor.WaitForInFlightAsync(24); // the 3 held without asking
        await Task.Delay(200);
        Assert.Equal(24, executor.NumInFlight);
        Assert.Equal(5, await VisibleCountAsync());

        Volatile.Write(ref wantsMore, true); // now the engine asks: shards join one by one until 40 are in flight
        await executor.WaitForInFlightAsync(40);
        await Task.Delay(200);
        Assert.Equal(40, executor.NumInFlight);
        Assert.Equal(3, await VisibleCountAsync());

        executor.ReleaseAll();
        await running;
        Assert.Equal(64, (await _folder.ReadCheckpointedIdsAsync(job.Id)).Distinct().Count());
    }

    [Theory]
    [InlineData(-1, 4)]
    [InlineData(5, 4)]
    public void MinConcurrentShards_out_of_range_is_refused(int min, int max) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShardPumpOptions { MinConcurrentShards = min, MaxConcurrentShards = max }.Validate());

    [Fact]
    public async Task Transient_receive_failures_are_reported_and_retried()
    {
        await _folder.SubmitAsync(Enumerable.Range(0, 16).Select(i => ExecutionFolder.Prompt($"r{i}", 4)));
        var flaky = new FlakyQueue(_folder.Ports.Work, failures: 3);
        var executor = new HeldExecutor();
        executor.ReleaseAll();
        var failures = new List<WorkQueueException>();
        var pump = new ShardPump(flaky, Processor(executor, flaky), Options(maxShards: 4), new ShardPumpHooks(ReceiveFailed: failures.Add));
        var completed = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await pump.RunAsync((r, _) => { if (r.Disposition == ShardDisposition.Completed) completed++; return Task.CompletedTask; },
            _ => Task.FromResult(completed == 2), cancellationToken: stop.Token);

        Assert.Equal(3, failures.Count);
        Assert.All(failures, e => Assert.True(e.IsTransient));
        Assert.Equal(2, completed);
    }

    [Fact]
    public async Task A_receive_failure_that_is_not_transient_ends_the_loop()
    {
        var broken = new FlakyQueue(_folder.Ports.Work, failures: int.MaxValue, reason: WorkQueueFailure.LockLost);
        var pump = new ShardPump(broken, Processor(new HeldExecutor(), broken), Options(maxShards: 1));
        var error = await Assert.ThrowsAsync<WorkQueueException>(() => pump.RunAsync((_, _) => Task.CompletedTask, _ => Task.FromResult(false)));
        Assert.Equal(WorkQueueFailure.LockLost, error.Reason);
    }

    private ShardProcessor Processor(IRequestExecutor executor, IWorkQueue? queue = null) =>
        new(_folder.Ports.Blobs, _folder.Ports.Checkpoints, queue ?? _folder.Ports.Work, _folder.Ports.Jobs, executor, _folder.Input,
            new ShardProcessorOptions(), TimeProvider.System);

    private static ShardPumpOptions Options(int maxShards) => new() { MaxConcurrentShards = maxShards, PollInterval = TimeSpan.FromMilliseconds(10) };

    /// <summary>Messages a receive would hand out now (the others are locked).</summary>
    private async Task<int> VisibleCountAsync()
    {
        var probe = await _folder.Ports.Work.ReceiveAsync(100);
        foreach (var message in probe) await _folder.Ports.Work.AbandonAsync(message);
        return probe.Count;
    }

    public void Dispose() => _folder.Dispose();

    /// <summary>Answers every request with a one-token completion once released.</summary>
    private sealed class HeldExecutor : IRequestExecutor
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _numInFlight, _numCompleted;

        public int NumInFlight => Volatile.Read(ref _numInFlight);

        public int NumCompleted => Volatile.Read(ref _numCompleted);

        public void ReleaseAll() => _release.TrySetResult();

        public async Task WaitForInFlightAsync(int count)
        {
            for (var i = 0; i < 1000 && NumInFlight < count; i++) await Task.Delay(10);
            Assert.Equal(count, NumInFlight);
        }

        public async Task<RequestOutcome> ExecuteAsync(BatchRequest request, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _numInFlight);
            await _release.Task.WaitAsync(cancellationToken);
            Interlocked.Decrement(ref _numInFlight);
            Interlocked.Increment(ref _numCompleted);
            return RequestOutcome.Success(request, "test", "x", FinishReason.Length, 1, 1, DateTimeOffset.UtcNow);
        }
    }

    /// <summary>The real queue, whose first receives fail as an unavailable service does.</summary>
    private sealed class FlakyQueue(IWorkQueue inner, int failures, WorkQueueFailure reason = WorkQueueFailure.Unavailable) : IWorkQueue
    {
        private int _failuresLeft = failures;

        public Task<IReadOnlyList<ReceivedMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken = default) =>
            Interlocked.Decrement(ref _failuresLeft) >= 0
                ? throw new WorkQueueException(reason, "", "service unavailable (test)")
                : inner.ReceiveAsync(maxMessages, cancellationToken);

        public Task SendAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken = default) => inner.SendAsync(messages, cancellationToken);
        public Task CompleteAsync(ReceivedMessage message, CancellationToken cancellationToken = default) => inner.CompleteAsync(message, cancellationToken);
        public Task AbandonAsync(ReceivedMessage message, CancellationToken cancellationToken = default) => inner.AbandonAsync(message, cancellationToken);
        public Task DeadLetterAsync(ReceivedMessage message, string reason, CancellationToken cancellationToken = default) => inner.DeadLetterAsync(message, reason, cancellationToken);
        public Task<DateTimeOffset> RenewLockAsync(ReceivedMessage message, CancellationToken cancellationToken = default) => inner.RenewLockAsync(message, cancellationToken);
    }
}

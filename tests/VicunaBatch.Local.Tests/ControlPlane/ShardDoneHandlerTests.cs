using System.Text;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Testing;

namespace VicunaBatch.Local.Tests.ControlPlane;

/// <summary>
/// The settled-shard path of every host, over a data folder composed as the hosts compose it (<c>AddLocalTransport</c>,
/// <c>AddVicunaBatchCore</c>); shards are run by a <see cref="ShardProcessor"/> with a stand-in executor.
/// </summary>
public sealed class ShardDoneHandlerTests : IDisposable
{
    private const string Input = "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n{\"custom_id\":\"b\",\"prompt\":\"two\"}\n{\"custom_id\":\"c\",\"prompt\":\"three\"}\n";

    private readonly TempFolder _folder = new();
    private readonly ManualTimeProvider _time = new(LocalRig.Start);
    private readonly ServiceProvider _services;

    public ShardDoneHandlerTests()
    {
        _services = new ServiceCollection().AddSingleton<TimeProvider>(_time).AddLocalTransport(_folder.Path, local => local.FlushToDisk = false)
            .AddVicunaBatchCore(core =>
            {
                core.Input = new() { RequestsPerShard = 2 };
                core.Models = LocalRig.Models.Names;
                core.ShardDone = new ShardDoneHandlerOptions { PollInterval = TimeSpan.FromMilliseconds(20), MaxDeliveries = 2, RetryDelay = TimeSpan.FromSeconds(1) };
            })
            .BuildServiceProvider();
    }

    private IWorkQueue ShardDone => _services.GetRequiredService<ControlQueues>().ShardDone;

    private ShardDoneHandler Handler => _services.GetRequiredService<ShardDoneHandler>();

    public void Dispose()
    {
        _services.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _folder.Dispose();
    }

    [Fact]
    public async Task RunAsync_eventsOfEverySettledShard_endTheJobOnceAndCompleteEveryEvent()
    {
        await SubmitAsync("job1");
        var work = _services.GetRequiredService<IWorkQueues>().Of(LocalRig.Models.Default);
        var processor = new ShardProcessor(_services.GetRequiredService<IBlobStore>(), _services.GetRequiredService<ICheckpointStore>(), work,
            _services.GetRequiredService<IJobStore>(), new EchoExecutor(), _services.GetRequiredService<Core.Formats.InputOptions>(),
            new ShardProcessorOptions { LockRenewalInterval = TimeSpan.Zero }, _time);
        foreach (var message in await work.ReceiveAsync(10))
        {
            var result = await processor.ProcessAsync(message);
            await ShardDone.SendAsync([new ShardDoneEvent("job1", result.Shard!.ShardIndex).ToMessage()]);
        }
        var endings = new List<JobEnding>();
        using var stop = new CancellationTokenSource();
        var counted = new CompletionCountingQueue(ShardDone, 2);

        var running = Handler.RunAsync(counted, e => { lock (endings) endings.Add(e); }, stop.Token);
        await counted.AllCompleted.WaitAsync(TimeSpan.FromSeconds(20));
        await stop.CancelAsync();
        await running.WaitAsync(TimeSpan.FromSeconds(20));

        var ended = Assert.Single(endings);
        Assert.Equal(("job1", JobStatus.Completed, 3), (ended.Job.Id, ended.Job.Status, ended.Job.RequestCounts.Completed));
        Assert.Empty(await ShardDone.ReceiveAsync(10)); // both events were completed, the second one finding the job ended
    }

    [Fact]
    public async Task HandleAsync_malformedEventOrUnknownJob_droppedWithoutThrowing()
    {
        Assert.Null(await Handler.HandleAsync("{not json"));
        Assert.Null(await Handler.HandleAsync(new ShardDoneEvent("batch_nobody", 0).ToMessage().Body));
    }

    [Fact]
    public async Task RunAsync_eventWhoseHandlingFails_retriedAfterADelayThenDeadLettered()
    {
        await SubmitAsync("job1");
        // a plan that no longer parses: settling the job throws every time
        await _services.GetRequiredService<IBlobStore>().PutBytesAsync(JobIds.PlanBlob("job1"), Encoding.UTF8.GetBytes("{broken"), BlobCondition.None);
        await ShardDone.SendAsync([new ShardDoneEvent("job1", 0).ToMessage()]);
        var logger = new ListLogger();
        var handler = new ShardDoneHandler(_services.GetRequiredService<JobSettler>(), logger, _services.GetRequiredService<CoreOptions>().ShardDone);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var running = handler.RunAsync(ShardDone, cancellationToken: stop.Token);

        var queue = (SqliteWorkQueue)ShardDone;
        await WaitUntilAsync(() => Task.FromResult(logger.Messages.Count == 1)); // the first delivery failed: hidden for its retry delay
        Assert.Empty(await queue.ReadDeadLettersAsync());
        _time.Advance(TimeSpan.FromSeconds(1)); // due again: the second delivery fails too, and that is the last
        await WaitUntilAsync(async () => (await queue.ReadDeadLettersAsync()).Count == 1);
        await stop.CancelAsync();
        await running;

        var letter = Assert.Single(await queue.ReadDeadLettersAsync());
        Assert.Equal(2, letter.DeliveryCount);
        Assert.StartsWith("handling failed 2 times: ", letter.Reason);
        Assert.Equal(0, await queue.CountAsync());
    }

    private async Task SubmitAsync(string jobId)
    {
        await _services.GetRequiredService<IBlobStore>().PutBytesAsync("inputs/in.jsonl", Encoding.UTF8.GetBytes(Input), BlobCondition.None);
        await _services.GetRequiredService<JobSubmitter>().SubmitAsync(new JobSubmission("inputs/in.jsonl") { JobId = jobId });
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        for (var i = 0; i < 400; i++)
        {
            if (await condition()) return;
            await Task.Delay(25);
        }
        throw new TimeoutException("the condition did not hold within 10 s");
    }

    /// <summary>The handler's log lines, as written.</summary>
    private sealed class ListLogger : Microsoft.Extensions.Logging.ILogger<ShardDoneHandler>
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Messages { get; } = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state,
            Exception? exception, Func<TState, Exception?, string> formatter) => Messages.Enqueue(formatter(state, exception));
    }
}

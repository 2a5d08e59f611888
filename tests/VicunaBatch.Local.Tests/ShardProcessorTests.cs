using VicunaBatch.Testing;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Local.Tests;

public sealed class ShardProcessorTests : IDisposable
{
    private readonly LocalRig _rig = new(requestsPerShard: 4);

    public void Dispose() => _rig.Dispose();

    private static string Prompts(params string[] prompts) =>
        string.Concat(prompts.Select((p, i) => $"{{\"custom_id\":\"r{i + 1}\",\"prompt\":\"{p}\"}}\n"));

    private async Task<List<RequestOutcome>> CheckpointsAsync(string jobId)
    {
        var list = new List<RequestOutcome>();
        await foreach (var outcome in _rig.Checkpoints.ReadJobAsync(jobId)) list.Add(outcome);
        return list;
    }

    [Fact]
    public async Task ProcessAsync_shard_sendsAllRequestsConcurrentlyAndCompletes()
    {
        await _rig.SubmitAsync("job1", Prompts("a", "b", "c", "d"));
        var executor = new EchoExecutor { HoldUntilInFlight = 4 };
        var message = (await _rig.Queue.ReceiveAsync(1)).Single();

        var result = await _rig.Processor(executor).ProcessAsync(message);

        Assert.Equal((ShardDisposition.Completed, 4, null), (result.Disposition, result.NumExecuted, result.Error));
        Assert.Equal(4, executor.MaxInFlight);
        Assert.Equal(["echo: a", "echo: b", "echo: c", "echo: d"], (await CheckpointsAsync("job1")).OrderBy(o => o.LineNumber).Select(o => o.Text));
        Assert.Equal(0, await _rig.Queue.CountAsync());
    }

    [Fact]
    public async Task ProcessAsync_twoShardsTogether_allRequestsInFlightAtOnce()
    {
        await _rig.SubmitAsync("job1", Prompts("a", "b", "c", "d", "e", "f", "g", "h"));
        var executor = new EchoExecutor { HoldUntilInFlight = 8 };
        var processor = _rig.Processor(executor);

        var results = await _rig.DrainAsync(processor);

        Assert.Equal([ShardDisposition.Completed, ShardDisposition.Completed], results.Select(r => r.Disposition));
        Assert.Equal(8, executor.MaxInFlight);
    }

    [Theory]
    [InlineData(JobStatus.Cancelling)]
    [InlineData(JobStatus.Expired)]
    public async Task ProcessAsync_shardOfAJobNoLongerToRun_isReportedSkippedWithoutRunningAndTheJobSettles(JobStatus status)
    {
        await _rig.SubmitAsync("job1", Prompts("a", "b", "c", "d", "e", "f"));
        var first = (await _rig.Queue.ReceiveAsync(1)).Single();
        var executor = new EchoExecutor();
        Assert.Equal(ShardDisposition.Completed, (await _rig.Processor(executor).ProcessAsync(first)).Disposition);
        var stored = (await _rig.Jobs.GetAsync("job1"))!;
        JobStateMachine.Transition(stored.Job, status, _rig.Time.GetUtcNow());
        await _rig.Jobs.SaveAsync(stored.Job, stored.ETag);

        var second = await _rig.Processor(executor).ProcessAsync((await _rig.Queue.ReceiveAsync(1)).Single());

        Assert.Equal((ShardDisposition.Skipped, 0), (second.Disposition, second.NumExecuted));
        Assert.Equal(["r1", "r2", "r3", "r4"], executor.Executed.Order()); // the first shard's only
        Assert.Equal(0, await _rig.Queue.CountAsync());
        var progress = await new ShardReports(_rig.Blobs).GetProgressAsync("job1");
        Assert.Equal((2, 2), (progress.ShardsDone, progress.ShardsTotal));
    }

    [Fact]
    public async Task TryCancelAsync_onceEveryShardReported_cancelsWithWhatRanAndBatchCancelledLinesForTheRest()
    {
        await _rig.SubmitAsync("job1", Prompts("a", "b", "c", "d", "e", "f"));
        var processor = _rig.Processor(new EchoExecutor());
        await processor.ProcessAsync((await _rig.Queue.ReceiveAsync(1)).Single());
        var stored = (await _rig.Jobs.GetAsync("job1"))!;
        JobStateMachine.Transition(stored.Job, JobStatus.Cancelling, _rig.Time.GetUtcNow());
        await _rig.Jobs.SaveAsync(stored.Job, stored.ETag);
        Assert.Equal(FinalizeStatus.NotReady, (await _rig.Finalizer.TryCancelAsync("job1")).Status); // shard 2 not reported yet
        await processor.ProcessAsync((await _rig.Queue.ReceiveAsync(1)).Single());

        var result = await _rig.Finalizer.TryCancelAsync("job1");

        Assert.Equal((FinalizeStatus.Finalized, JobStatus.Cancelled, new RequestCounts(6, 4, 2)), (result.Status, result.Job.Status, result.Job.RequestCounts));
        Assert.Equal(["r1", "r2", "r3", "r4"], (await _rig.ReadLinesAsync(result.Job.OutputFileId!)).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("custom_id").GetString()));
        Assert.Equal(["r5 batch_cancelled", "r6 batch_cancelled"], (await _rig.ReadLinesAsync(result.Job.ErrorFileId!))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).Select(e => $"{e.GetProperty("custom_id").GetString()} {ErrorLines.ErrorOf(e).GetProperty("code").GetString()}"));
        Assert.Equal(FinalizeStatus.Skipped, (await _rig.Finalizer.TryCancelAsync("job1")).Status); // once
    }

    [Fact]
    public async Task ProcessAsync_redeliveredShard_skipsCheckpointedIds()
    {
        await _rig.SubmitAsync("job1", Prompts("a", "b", "c"));
        var earlier = RequestOutcome.Success(new BatchRequest { CustomId = "r2", LineNumber = 2, Endpoint = BatchEndpoint.Completions, Prompt = "b" },
            "echo-model", "from before", FinishReason.Stop, 1, 1, LocalRig.Start);
        await _rig.Checkpoints.AppendAsync("job1", 0, earlier);
        var executor = new EchoExecutor();

        var result = await _rig.Processor(executor).ProcessAsync((await _rig.Queue.ReceiveAsync(1)).Single());

        Assert.Equal(2, result.NumExecuted);
        Assert.Equal(["r1", "r3"], executor.Executed.Order());
        Assert.Equal(["echo: a", "from before", "echo: c"], (await CheckpointsAsync("job1")).OrderBy(o => o.LineNumber).Select(o => o.Text));
    }

    [Fact]
    public async Task ProcessAsync_executorThrows_becomesErrorOutcomeAndShardCompletes()
    {
        await _rig.SubmitAsync("job1", Prompts("a", "boom"));

        var result = await _rig.Processor(new EchoExecutor()).ProcessAsync((await _rig.Queue.ReceiveAsync(1)).Single());

        Assert.Equal(ShardDisposition.Completed, result.Disposition);
        var failed = (await CheckpointsAsync("job1")).Single(o => !o.Succeeded);
        Assert.Equal(("r2", 2, RequestErrorCode.ExecutionFailed, "engine exploded"), (failed.CustomId, failed.LineNumber, failed.ErrorCode!.Value, failed.ErrorMessage));
    }

    [Fact]
    public async Task ProcessAsync_cancelled_abandonsMessageWithoutCompleting()
    {
        await _rig.SubmitAsync("job1", Prompts("a", "hang"));
        using var shutdown = new CancellationTokenSource();
        var message = (await _rig.Queue.ReceiveAsync(1)).Single();

        var processing = _rig.Processor(new EchoExecutor()).ProcessAsync(message, shutdown.Token);
        while ((await CheckpointsAsync("job1")).Count == 0) await Task.Delay(10);
        await shutdown.CancelAsync();
        var result = await processing;

        Assert.Equal((ShardDisposition.Abandoned, null), (result.Disposition, result.Error));
        Assert.False(await _rig.Blobs.ExistsAsync(JobIds.ShardReportBlob("job1", 0)));
        var redelivered = (await _rig.Queue.ReceiveAsync(1)).Single();
        Assert.Equal((message.MessageId, 2), (redelivered.MessageId, redelivered.DeliveryCount));
        Assert.Equal(["r1"], (await CheckpointsAsync("job1")).Select(o => o.CustomId));
    }

    [Fact]
    public async Task ProcessAsync_deliveriesWithoutProgressReachTheLimit_deadLettered()
    {
        await _rig.SubmitAsync("job1", Prompts("a"));
        var processor = _rig.Processor(new EchoExecutor(), maxDeliveries: 2);
        for (int i = 0; i < 2; i++) await _rig.Queue.AbandonAsync((await _rig.Queue.ReceiveAsync(1)).Single());

        var result = await processor.ProcessAsync((await _rig.Queue.ReceiveAsync(1)).Single());

        Assert.Equal(ShardDisposition.DeadLettered, result.Disposition);
        Assert.Equal("2 deliveries in a row made no progress (no request checkpointed; MaxDeliveriesWithoutProgress 2)",
            (await _rig.Queue.ReadDeadLettersAsync()).Single().Reason);
        Assert.True(await _rig.Blobs.ExistsAsync(JobIds.ShardReportBlob("job1", 0)));
    }

    [Fact]
    public async Task ProcessAsync_stoppedGracefullyMoreOftenThanTheLimit_goesOnAsAFreshMessageAndIsNeverPoison()
    {
        await _rig.SubmitAsync("job1", Prompts("a", "hang"));
        var executor = new EchoExecutor();
        var processor = _rig.Processor(executor, maxDeliveries: 2);
        var seen = new List<(string, int, ShardDisposition)>();

        for (int cycle = 0; cycle < 7; cycle++)
        {
            var message = (await _rig.Queue.ReceiveAsync(1)).Single();
            using var shutdown = new CancellationTokenSource();
            int hangsBefore = executor.Executed.Count(id => id == "r2");
            var processing = processor.ProcessAsync(message, shutdown.Token);
            while (!processing.IsCompleted && executor.Executed.Count(id => id == "r2") == hangsBefore) await Task.Delay(10);
            await shutdown.CancelAsync(); // a graceful stop while the shard runs
            seen.Add((message.MessageId, message.DeliveryCount, (await processing).Disposition));
        }

        Assert.Equal([
            ("job1:0", 1, ShardDisposition.Abandoned), ("job1:0", 2, ShardDisposition.Abandoned), ("job1:0", 3, ShardDisposition.Abandoned),
            ("job1:0", 4, ShardDisposition.Resent),
            ("job1:0:g1", 1, ShardDisposition.Abandoned), ("job1:0:g1", 2, ShardDisposition.Abandoned), ("job1:0:g1", 3, ShardDisposition.Abandoned),
        ], seen);
        Assert.Empty(await _rig.Queue.ReadDeadLettersAsync());
        Assert.Equal(["r1"], (await CheckpointsAsync("job1")).Select(o => o.CustomId));
    }

    [Fact]
    public async Task ProcessAsync_lostDeliveriesThatCheckpointedRequests_areNotPoisonAndTheShardFinishesAsAFreshMessage()
    {
        await _rig.SubmitAsync("job1", Prompts("a", "b", "c", "d"));
        // three workers were killed in turn, each after checkpointing one request: the lock ran out, nothing else was written
        for (int i = 1; i <= 3; i++)
        {
            var lost = (await _rig.Queue.ReceiveAsync(1)).Single();
            var request = new BatchRequest { CustomId = $"r{i}", LineNumber = i, Endpoint = BatchEndpoint.Completions, Prompt = "x" };
            await _rig.Checkpoints.AppendAsync("job1", 0, RequestOutcome.Success(request, "echo-model", "done", FinishReason.Stop, 1, 1, LocalRig.Start));
            await _rig.Queue.AbandonAsync(lost);
        }
        var executor = new EchoExecutor();
        var processor = _rig.Processor(executor, maxDeliveries: 2);

        var fourth = await processor.ProcessAsync((await _rig.Queue.ReceiveAsync(1)).Single());
        var fresh = (await _rig.Queue.ReceiveAsync(1)).Single();
        var last = await processor.ProcessAsync(fresh);

        Assert.Equal((ShardDisposition.Resent, 0), (fourth.Disposition, fourth.NumExecuted));
        Assert.Equal(("job1:0:g1", 1), (fresh.MessageId, fresh.DeliveryCount));
        Assert.Equal((ShardDisposition.Completed, 1), (last.Disposition, last.NumExecuted));
        Assert.Equal(["r4"], executor.Executed);
        Assert.Empty(await _rig.Queue.ReadDeadLettersAsync());
    }

    [Fact]
    public async Task ProcessAsync_freshMessageThatStillMakesNoProgress_isPoisonAfterTheLimitCountedAcrossBothMessages()
    {
        await _rig.SubmitAsync("job1", Prompts("a"));
        var processor = _rig.Processor(new EchoExecutor()); // 5 without progress; resend at delivery 4
        for (int i = 0; i < 3; i++) await _rig.Queue.AbandonAsync((await _rig.Queue.ReceiveAsync(1)).Single());
        Assert.Equal(ShardDisposition.Resent, (await processor.ProcessAsync((await _rig.Queue.ReceiveAsync(1)).Single())).Disposition);
        for (int i = 0; i < 2; i++) await _rig.Queue.AbandonAsync((await _rig.Queue.ReceiveAsync(1)).Single());

        var poison = await processor.ProcessAsync((await _rig.Queue.ReceiveAsync(1)).Single());

        Assert.Equal(ShardDisposition.DeadLettered, poison.Disposition);
        var deadLetter = (await _rig.Queue.ReadDeadLettersAsync()).Single();
        Assert.Equal(("job1:0:g1", "5 deliveries in a row made no progress (no request checkpointed; MaxDeliveriesWithoutProgress 5)"),
            (deadLetter.MessageId, deadLetter.Reason));
    }

    [Fact]
    public async Task ProcessAsync_malformedMessage_deadLettered()
    {
        await _rig.Queue.SendAsync([new OutgoingMessage("x", "not json")]);

        var result = await _rig.Processor(new EchoExecutor()).ProcessAsync((await _rig.Queue.ReceiveAsync(1)).Single());

        Assert.Equal(ShardDisposition.DeadLettered, result.Disposition);
        Assert.StartsWith("malformed shard message", (await _rig.Queue.ReadDeadLettersAsync()).Single().Reason);
    }
}

using System.Text;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;
using VicunaBatch.Core.Services;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Local;

namespace VicunaBatch.Azure.Tests;

/// <summary>
/// The unchanged Core job flow (JobSubmitter → ShardProcessor → shard-done event → JobFinalizer → webhook outbox)
/// on the Azure parts: blobs, checkpoints and the control-plane queues on a real Azurite, shards on the Service Bus
/// work queue (through <see cref="FakeServiceBus"/>) or on a Storage queue.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class AzureJobFlowTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private static readonly DateTimeOffset Start = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

    private const string Input =
        "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n" +
        "{bad json\n" +
        "\n" +
        "{\"custom_id\":\"b\",\"messages\":[{\"role\":\"user\",\"content\":\"two\"}]}\n" +
        "{\"custom_id\":\"c\",\"prompt\":\"boom\"}\n" +
        "{\"custom_id\":\"a\",\"prompt\":\"dup\"}\n" +
        "{\"custom_id\":\"d\",\"prompt\":\"four\"}\n";

    private static readonly ServedModels Models = new(["echo-model"]);
    private readonly ManualTimeProvider _time = new(Start);
    private readonly InputOptions _input = new() { RequestsPerShard = 2 };
    private readonly FakeServiceBus _bus = new(TimeSpan.FromMinutes(5)) { MaxDeliveryCount = 5 }; // as infra
    private StorageContainerNames _containers = null!;
    private AzureBlobStore _blobs = null!;
    private BlobCheckpointStore _checkpoints = null!;
    private StorageWorkQueue _shardDone = null!;
    private StorageWorkQueue _webhooks = null!;
    private BlobJobStore _jobs = null!;

    public async Task InitializeAsync()
    {
        var containers = _containers = azurite.UniqueContainers();
        _blobs = new AzureBlobStore(azurite.Blobs, containers);
        await _blobs.CreateContainersAsync();
        var results = azurite.Blobs.GetBlobContainerClient(containers.Results);
        await results.CreateIfNotExistsAsync();
        _checkpoints = new BlobCheckpointStore(results);
        _jobs = new BlobJobStore(_blobs);
        _shardDone = new StorageWorkQueue(azurite.Queues(), azurite.UniqueName("shard-done"), TimeSpan.FromMinutes(5), TimeProvider.System);
        _webhooks = new StorageWorkQueue(azurite.Queues(), azurite.UniqueName("webhooks"), TimeSpan.FromMinutes(5), TimeProvider.System);
        await _shardDone.CreateIfNotExistsAsync();
        await _webhooks.CreateIfNotExistsAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private ServiceBusWorkQueue WorkQueue() => new(_bus.NewSender, _bus.NewReceiver, TimeSpan.FromSeconds(1), _bus.Clock);

    private ShardProcessor Processor(IWorkQueue queue, IRequestExecutor executor, int maxDeliveries = 5) =>
        new(_blobs, _checkpoints, queue, _jobs, executor, _input, new ShardProcessorOptions { MaxDeliveriesWithoutProgress = maxDeliveries, LockRenewalInterval = TimeSpan.Zero }, _time);

    private async Task<BatchJob> SubmitAsync(IWorkQueue queue, string jobId, string input, WebhookSettings? webhook = null)
    {
        await _blobs.PutBytesAsync("files/file-1/content.jsonl", Encoding.UTF8.GetBytes(input), BlobCondition.None);
        return await new JobSubmitter(_blobs, _jobs, new SharedWorkQueue(queue), Models, _input, _time).SubmitAsync(
            new JobSubmission("files/file-1/content.jsonl") { JobId = jobId, Webhook = webhook });
    }

    /// <summary>The worker side: process every shard, announce each settled one on the shard-done queue.</summary>
    private async Task<List<ShardResult>> DrainAsync(IWorkQueue queue, ShardProcessor processor)
    {
        var results = new List<ShardResult>();
        IReadOnlyList<ReceivedMessage> messages;
        while ((messages = await queue.ReceiveAsync(8)).Count > 0)
            foreach (var message in messages)
            {
                var result = await processor.ProcessAsync(message);
                results.Add(result);
                if (result.Shard is { } shard && result.Disposition != ShardDisposition.Abandoned)
                    await _shardDone.SendAsync([new ShardDoneEvent(shard.JobId, shard.ShardIndex).ToMessage()]);
            }
        return results;
    }

    /// <summary>The finalizer side: every shard-done event → TryFinalize; the one call that finalizes enqueues the webhook.</summary>
    private async Task<List<FinalizeStatus>> FinalizeFromEventsAsync()
    {
        var finalizer = new JobFinalizer(_blobs, _jobs, _checkpoints, _input, _time);
        var statuses = new List<FinalizeStatus>();
        IReadOnlyList<ReceivedMessage> events;
        while ((events = await _shardDone.ReceiveAsync(32)).Count > 0)
            foreach (var message in events)
            {
                var result = await finalizer.TryFinalizeAsync(ShardDoneEvent.Parse(message.Body).JobId);
                if (result.Status == FinalizeStatus.Finalized) await new WebhookOutbox(_webhooks).EnqueueAsync(result.Job);
                statuses.Add(result.Status);
                await _shardDone.CompleteAsync(message);
            }
        return statuses;
    }

    private async Task<(byte[] Output, byte[] Errors, BatchJob Job)> RunLocallyAsync(string jobId, string input)
    {
        using var folder = new TempFolder();
        var blobs = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = Path.Combine(folder.Path, "blobs"), FlushToDisk = false });
        var checkpoints = new FolderCheckpointStore(new FolderCheckpointStoreOptions { RootPath = Path.Combine(folder.Path, "checkpoints"), FlushToDisk = false });
        var queue = new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = Path.Combine(folder.Path, "queue.db") }, _time);
        var jobs = new BlobJobStore(blobs);
        await blobs.PutBytesAsync("files/file-1/content.jsonl", Encoding.UTF8.GetBytes(input), BlobCondition.None);
        await new JobSubmitter(blobs, jobs, new SharedWorkQueue(queue), Models, _input, _time).SubmitAsync(new JobSubmission("files/file-1/content.jsonl") { JobId = jobId });
        var processor = new ShardProcessor(blobs, checkpoints, queue, jobs, new EchoExecutor(Start), _input,
            new ShardProcessorOptions { LockRenewalInterval = TimeSpan.Zero }, _time);
        IReadOnlyList<ReceivedMessage> messages;
        while ((messages = await queue.ReceiveAsync(8)).Count > 0)
            foreach (var message in messages) await processor.ProcessAsync(message);
        var result = await new JobFinalizer(blobs, jobs, checkpoints, _input, _time).TryFinalizeAsync(jobId);
        return (await blobs.ReadBytesAsync(JobIds.OutputBlob(jobId)), await blobs.ReadBytesAsync(JobIds.ErrorsBlob(jobId)), result.Job);
    }

    [Fact]
    public async Task JobOnAzureParts_submitDrainFinalize_writesTheSameFilesAsTheLocalPartsAndOneWebhook()
    {
        var workQueue = WorkQueue();
        var submitted = await SubmitAsync(workQueue, "job1", Input, new WebhookSettings("https://example.test/hook", ["batch.completed"]));

        var shards = await DrainAsync(workQueue, Processor(workQueue, new EchoExecutor(Start)));
        var statuses = await FinalizeFromEventsAsync();

        var local = await RunLocallyAsync("job1", Input);
        var job = (await _jobs.GetAsync("job1"))!.Job;
        Assert.Equal((JobStatus.InProgress, 2), (submitted.Status, _bus.Sent.Count)); // 4 valid requests, 2 per shard
        Assert.Equal(["job1:0", "job1:1"], _bus.Sent.Select(m => m.MessageId));
        Assert.All(shards, s => Assert.Equal(ShardDisposition.Completed, s.Disposition));
        Assert.Equal([FinalizeStatus.Finalized, FinalizeStatus.Skipped], statuses); // every shard was done before the first event was read
        Assert.Equal(Encoding.UTF8.GetString(local.Output), Encoding.UTF8.GetString(await _blobs.ReadBytesAsync(JobIds.OutputBlob("job1"))));
        Assert.Equal(Encoding.UTF8.GetString(local.Errors), Encoding.UTF8.GetString(await _blobs.ReadBytesAsync(JobIds.ErrorsBlob("job1"))));
        Assert.Equal((JobStatus.Completed, new RequestCounts(6, 3, 3)), (job.Status, job.RequestCounts));
        Assert.Equal((local.Job.RequestCounts, local.Job.Usage), (job.RequestCounts, job.Usage));
        var delivery = WebhookDelivery.Parse(Assert.Single(await _webhooks.ReceiveAsync(32)).Body);
        Assert.Equal(("batch.completed", "job1", "https://example.test/hook"), (delivery.EventType, delivery.JobId, delivery.Url));
        Assert.Equal(0, _bus.NumActive);
    }

    [Fact]
    public async Task BlobStorage_resettingConnectionsUnderTheFinalizer_theSdkRetriesThenTheCallFailsTransientlyAndItsRetryCompletesTheJob()
    {
        var workQueue = WorkQueue();
        await SubmitAsync(workQueue, "job1", Input);
        await DrainAsync(workQueue, Processor(workQueue, new EchoExecutor(Start)));
        // five connection resets in a row on the output upload, on the real Azurite; the SDK retries twice per call
        var outage = new BlobOutage("/" + JobIds.OutputBlob("job1"), numFailures: 5);
        var options = new BlobClientOptions { Retry = { MaxRetries = 2, Mode = RetryMode.Fixed, Delay = TimeSpan.FromMilliseconds(10) } };
        options.AddPolicy(outage, HttpPipelinePosition.PerRetry);
        var flaky = new AzureBlobStore(new BlobServiceClient(azurite.ConnectionString, options), _containers);
        var finalizer = new JobFinalizer(flaky, new BlobJobStore(flaky), _checkpoints, _input, _time);

        var e = await Assert.ThrowsAsync<BlobStoreException>(() => finalizer.TryFinalizeAsync("job1"));
        Assert.True(e.IsTransient, e.ToString()); // the Finalizer function's queue message is retried on this
        Assert.Equal(3, outage.NumFailed);
        Assert.Equal(JobStatus.Finalizing, (await _jobs.GetAsync("job1"))!.Job.Status);
        var result = await finalizer.TryFinalizeAsync("job1"); // two more resets, absorbed by the SDK's retries

        Assert.Equal(5, outage.NumFailed);
        Assert.Equal((FinalizeStatus.Finalized, JobStatus.Completed), (result.Status, result.Job.Status));
        var local = await RunLocallyAsync("job1", Input);
        Assert.Equal(Encoding.UTF8.GetString(local.Output), Encoding.UTF8.GetString(await _blobs.ReadBytesAsync(JobIds.OutputBlob("job1"))));
        using var input = new MemoryStream(Encoding.UTF8.GetBytes(Input));
        var report = await new ResultsChecker(_input).CheckAsync(input, InputFormat.Jsonl,
            new MemoryStream(await _blobs.ReadBytesAsync(JobIds.OutputBlob("job1"))), new MemoryStream(await _blobs.ReadBytesAsync(JobIds.ErrorsBlob("job1"))),
            new MemoryStream(await _blobs.ReadBytesAsync(JobIds.JobBlob("job1"))));
        Assert.True(report.IsWhole, string.Join("\n", report.Problems));
    }

    [Fact]
    public async Task ShardOnServiceBus_lockLostBeforeComplete_redeliveryRunsNothingTwice()
    {
        var workQueue = WorkQueue();
        await SubmitAsync(workQueue, "job1", "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n{\"custom_id\":\"b\",\"prompt\":\"two\"}\n");
        // the engine is slow: the lock runs out while the shard runs, and Complete meets MessageLockLost. The two
        // requests run at once: without the lock one += could overwrite the other, and 3 minutes keep a 5-minute lock
        var slow = new EchoExecutor(Start) { BeforeReturn = () => { lock (_bus) _bus.Now += TimeSpan.FromMinutes(3); } };
        var first = Assert.Single(await workQueue.ReceiveAsync(1));

        var lost = await Processor(workQueue, slow).ProcessAsync(first); // reported, not thrown: the worker's pump goes on
        var redelivered = Assert.Single(await workQueue.ReceiveAsync(1));
        var again = new EchoExecutor(Start);
        var result = await Processor(workQueue, again).ProcessAsync(redelivered);

        Assert.Equal(ShardDisposition.LockLost, lost.Disposition);
        Assert.Equal(WorkQueueFailure.LockLost, Assert.IsType<WorkQueueException>(lost.Error).Reason);
        Assert.Equal(2, redelivered.DeliveryCount);
        Assert.Equal((ShardDisposition.Completed, 0), (result.Disposition, result.NumExecuted));
        Assert.Empty(again.Executed);
        // each request checkpointed once; in the order they ended (they run concurrently), not input order
        Assert.Equal(["a", "b"], (await _checkpoints.ReadShardAsync("job1", 0).ToListAsync()).Select(o => o.CustomId).Order(StringComparer.Ordinal));
        Assert.Equal(0, _bus.NumActive);
        var finalized = await new JobFinalizer(_blobs, _jobs, _checkpoints, _input, _time).TryFinalizeAsync("job1");
        Assert.Equal((FinalizeStatus.Finalized, new RequestCounts(2, 2, 0)), (finalized.Status, finalized.Job.RequestCounts));
    }

    [Fact]
    public async Task ShardOnServiceBus_deliveredTooOften_deadLetteredWithReasonAndTheJobStillFinalizes()
    {
        var workQueue = WorkQueue();
        await SubmitAsync(workQueue, "job1", "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n");
        for (int crash = 0; crash < 2; crash++) await workQueue.AbandonAsync(Assert.Single(await workQueue.ReceiveAsync(1))); // two workers died

        var results = await DrainAsync(workQueue, Processor(workQueue, new EchoExecutor(Start), maxDeliveries: 2));
        await FinalizeFromEventsAsync();

        Assert.Equal(ShardDisposition.DeadLettered, Assert.Single(results).Disposition);
        var letter = Assert.Single(_bus.DeadLetters);
        Assert.Equal(("job1:0", "2 deliveries in a row made no progress (no request checkpointed; MaxDeliveriesWithoutProgress 2)", 3),
            (letter.MessageId, letter.Reason, letter.DeliveryCount));
        var errors = Encoding.UTF8.GetString(await _blobs.ReadBytesAsync(JobIds.ErrorsBlob("job1")));
        Assert.Contains("\"code\":\"shard_failed\"", errors);
        Assert.Equal((JobStatus.Completed, new RequestCounts(1, 0, 1)), ((await _jobs.GetAsync("job1"))!.Job.Status, (await _jobs.GetAsync("job1"))!.Job.RequestCounts));
    }

    [Fact]
    public async Task ShardOnServiceBus_workersStoppedEightTimesInARow_goesOnAsFreshMessagesBeforeMaxDeliveryCountAndEndsWithNoneFailed()
    {
        var workQueue = WorkQueue();
        await SubmitAsync(workQueue, "job1", "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n{\"custom_id\":\"b\",\"prompt\":\"two\"}\n");
        var executor = new StoppableExecutor(Start);
        var processor = Processor(workQueue, executor);
        var seen = new List<(string, int, ShardDisposition)>();

        for (int stop = 0; stop < 8; stop++) // spot GPUs evicted, each with SIGTERM: every delivery is given back
        {
            var message = Assert.Single(await workQueue.ReceiveAsync(1));
            using var shutdown = new CancellationTokenSource();
            int dispatchedBefore = executor.NumDispatched;
            var processing = processor.ProcessAsync(message, shutdown.Token);
            while (!processing.IsCompleted && executor.NumDispatched == dispatchedBefore) await Task.Delay(10);
            await shutdown.CancelAsync();
            seen.Add((message.MessageId, message.DeliveryCount, (await processing).Disposition));
        }
        executor.Run = true;
        var results = await DrainAsync(workQueue, processor);
        await FinalizeFromEventsAsync();

        Assert.Equal([
            ("job1:0", 1, ShardDisposition.Abandoned), ("job1:0", 2, ShardDisposition.Abandoned), ("job1:0", 3, ShardDisposition.Abandoned),
            ("job1:0", 4, ShardDisposition.Resent),
            ("job1:0:g1", 1, ShardDisposition.Abandoned), ("job1:0:g1", 2, ShardDisposition.Abandoned), ("job1:0:g1", 3, ShardDisposition.Abandoned),
            ("job1:0:g1", 4, ShardDisposition.Resent),
        ], seen);
        Assert.Equal((ShardDisposition.Completed, 2), (Assert.Single(results).Disposition, results[0].NumExecuted));
        Assert.Empty(_bus.DeadLetters);
        Assert.Equal(["job1:0", "job1:0:g1", "job1:0:g2"], _bus.Sent.Select(m => m.MessageId));
        var job = (await _jobs.GetAsync("job1"))!.Job;
        Assert.Equal((JobStatus.Completed, new RequestCounts(2, 2, 0)), (job.Status, job.RequestCounts));
    }

    /// <summary>Echoes once <see cref="Run"/> is set; until then each request waits for the worker to stop.</summary>
    private sealed class StoppableExecutor(DateTimeOffset start) : IRequestExecutor
    {
        private int _numDispatched;
        public volatile bool Run;
        public int NumDispatched => Volatile.Read(ref _numDispatched);

        public async Task<RequestOutcome> ExecuteAsync(BatchRequest request, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _numDispatched);
            if (!Run) await Task.Delay(Timeout.Infinite, cancellationToken);
            return RequestOutcome.Success(request, "echo-model", "echo", FinishReason.Stop, 1, 1, start);
        }
    }

    [Fact]
    public async Task ShardsOnAStorageQueue_sameFlow_completes()
    {
        var shardQueue = new StorageWorkQueue(azurite.Queues(), azurite.UniqueName("shards"), TimeSpan.FromMinutes(5), TimeProvider.System);
        await shardQueue.CreateIfNotExistsAsync();
        await SubmitAsync(shardQueue, "job2", Input);

        await DrainAsync(shardQueue, Processor(shardQueue, new EchoExecutor(Start)));
        var statuses = await FinalizeFromEventsAsync();

        Assert.Single(statuses, s => s == FinalizeStatus.Finalized); // Storage queues do not keep order: the other event may come after
        Assert.Equal(new RequestCounts(6, 3, 3), (await _jobs.GetAsync("job2"))!.Job.RequestCounts);
    }
}

/// <summary>An HTTP pipeline policy of the Azure SDK (its own test seam) that resets the connection for the first
/// <c>numFailures</c> uploads of one blob, before the request reaches Azurite.</summary>
internal sealed class BlobOutage(string pathSuffix, int numFailures) : HttpPipelinePolicy
{
    private readonly int _numFailures = numFailures;
    private int _numLeft = numFailures;

    public int NumFailed => _numFailures - Math.Max(0, Volatile.Read(ref _numLeft));

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        Fail(message);
        ProcessNext(message, pipeline);
    }

    public override ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        Fail(message);
        return ProcessNextAsync(message, pipeline);
    }

    private void Fail(HttpMessage message)
    {
        if (message.Request.Method == RequestMethod.Put && message.Request.Uri.Path.EndsWith(pathSuffix, StringComparison.Ordinal)
            && Interlocked.Decrement(ref _numLeft) >= 0)
            throw new IOException("injected: connection reset by peer");
    }
}

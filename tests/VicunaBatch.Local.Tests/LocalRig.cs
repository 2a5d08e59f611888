using System.Collections.Concurrent;
using System.Text;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Local.Tests;

/// <summary>The Core services wired to the real local parts in a temp folder.</summary>
internal sealed class LocalRig : IDisposable
{
    public static readonly DateTimeOffset Start = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

    /// <summary>What the rig serves: one model, the default of every line that names none.</summary>
    public static readonly ServedModels Models = new(["echo-model"]);

    private readonly TempFolder _folder = new();
    public ManualTimeProvider Time { get; } = new(Start);
    public InputOptions Input { get; }
    public FolderBlobStore Blobs { get; }
    public SqliteWorkQueue Queue { get; }
    public FolderCheckpointStore Checkpoints { get; }
    public BlobJobStore Jobs { get; }
    public JobSubmitter Submitter { get; }
    public JobFinalizer Finalizer { get; }

    public LocalRig(int requestsPerShard = 64)
    {
        Input = new InputOptions { RequestsPerShard = requestsPerShard };
        Blobs = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _folder.Combine("blobs"), FlushToDisk = false });
        Queue = new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = _folder.Combine("queue.db") }, Time);
        Checkpoints = new FolderCheckpointStore(new FolderCheckpointStoreOptions { RootPath = _folder.Combine("checkpoints"), FlushToDisk = false });
        Jobs = new BlobJobStore(Blobs);
        Submitter = new JobSubmitter(Blobs, Jobs, new SharedWorkQueue(Queue), Models, Input, Time);
        Finalizer = new JobFinalizer(Blobs, Jobs, Checkpoints, Input, Time);
    }

    public ShardProcessor Processor(IRequestExecutor executor, int maxDeliveries = 5) =>
        new(Blobs, Checkpoints, Queue, Jobs, executor, Input, new ShardProcessorOptions { MaxDeliveriesWithoutProgress = maxDeliveries, LockRenewalInterval = TimeSpan.Zero }, Time);

    public async Task<BatchJob> SubmitAsync(string jobId, string input, string blob = "inputs/in.jsonl")
    {
        await Blobs.PutBytesAsync(blob, Encoding.UTF8.GetBytes(input), BlobCondition.None);
        return await Submitter.SubmitAsync(new JobSubmission(blob) { JobId = jobId });
    }

    /// <summary>Receives and processes messages until the queue is empty.</summary>
    public async Task<List<ShardResult>> DrainAsync(ShardProcessor processor)
    {
        var results = new List<ShardResult>();
        IReadOnlyList<ReceivedMessage> messages;
        while ((messages = await Queue.ReceiveAsync(8)).Count > 0)
            results.AddRange(await Task.WhenAll(messages.Select(m => processor.ProcessAsync(m))));
        return results;
    }

    public async Task<string[]> ReadLinesAsync(string blob) =>
        Encoding.UTF8.GetString(await Blobs.ReadBytesAsync(blob)).Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public void Dispose() => _folder.Dispose();
}

/// <summary>
/// Deterministic stand-in for the engine: answers "echo: {prompt}"; prompt "boom" throws;
/// prompt "hang" waits for cancellation. With <see cref="HoldUntilInFlight"/> set, every call waits
/// until that many calls are in flight together (a sequential caller would never get there).
/// </summary>
internal sealed class EchoExecutor : IRequestExecutor
{
    private readonly TaskCompletionSource _enoughInFlight = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inFlight;

    public int HoldUntilInFlight { get; init; }
    public ConcurrentQueue<string> Executed { get; } = new();
    public int MaxInFlight { get; private set; }

    public async Task<RequestOutcome> ExecuteAsync(BatchRequest request, CancellationToken cancellationToken = default)
    {
        Executed.Enqueue(request.CustomId);
        int now = Interlocked.Increment(ref _inFlight);
        lock (Executed) MaxInFlight = Math.Max(MaxInFlight, now);
        try
        {
            if (HoldUntilInFlight > 0)
            {
                if (now >= HoldUntilInFlight) _enoughInFlight.TrySetResult();
                await _enoughInFlight.Task.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
            }
            var prompt = request.Prompt ?? request.Messages[^1].Content;
            if (prompt == "boom") throw new InvalidOperationException("engine exploded");
            if (prompt == "hang") await Task.Delay(Timeout.Infinite, cancellationToken);
            return RequestOutcome.Success(request, "echo-model", $"echo: {prompt}", FinishReason.Stop, prompt.Length, 2, LocalRig.Start.AddSeconds(request.LineNumber));
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }
}

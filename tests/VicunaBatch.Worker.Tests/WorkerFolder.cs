using System.Text.Json;
using System.Text;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;
using VicunaBatch.Core.Services;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Local;

namespace VicunaBatch.Worker.Tests;

/// <summary>
/// A temporary data folder shared by a test (the submitter and finalizer, as the API and the Finalizer function are
/// on Azure) and the worker under test: the SQLite queues, the folder blob and checkpoint stores.
/// </summary>
internal sealed class WorkerFolder : IDisposable
{
    private readonly TimeProvider _time = TimeProvider.System;

    public WorkerFolder()
    {
        DataPath = Path.Combine(Path.GetTempPath(), "vicuna-worker-tests", Guid.NewGuid().ToString("N"));
        Transport = WorkerHost.LocalTransport(DataPath, _time);
        WorkQueue = (SqliteWorkQueue)Transport.WorkQueue;
        SettledQueue = new SqliteWorkQueue(new SqliteWorkQueueOptions
        {
            DatabasePath = Path.Combine(DataPath, "queue.db"), QueueName = WorkerHost.LocalShardDoneQueue,
        }, _time);
    }

    public string DataPath { get; }

    public WorkerTransport Transport { get; }

    public SqliteWorkQueue WorkQueue { get; }

    public SqliteWorkQueue SettledQueue { get; }

    public InputOptions Input { get; init; } = new() { RequestsPerShard = 8 };

    public async Task<BatchJob> SubmitAsync(IEnumerable<string> lines)
    {
        var jobId = JobIds.New();
        var blob = $"inputs/{jobId}.jsonl";
        await Transport.Blobs.PutBytesAsync(blob, Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"), BlobCondition.IfNotExists);
        return await new JobSubmitter(Transport.Blobs, new BlobJobStore(Transport.Blobs), WorkQueue, Input, _time)
            .SubmitAsync(new JobSubmission(blob) { JobId = jobId });
    }

    /// <summary>Consumes the settled events queued now (none: an empty list).</summary>
    public async Task<List<ShardDoneEvent>> TakeSettledAsync()
    {
        var events = new List<ShardDoneEvent>();
        foreach (var message in await SettledQueue.ReceiveAsync(16))
        {
            events.Add(ShardDoneEvent.Parse(message.Body));
            await SettledQueue.CompleteAsync(message);
        }
        return events;
    }

    /// <summary>Consumes settled events until <paramref name="count"/> arrived (or the timeout passes).</summary>
    public async Task<List<ShardDoneEvent>> WaitForSettledAsync(int count, TimeSpan timeout)
    {
        var events = new List<ShardDoneEvent>();
        using var cts = new CancellationTokenSource(timeout);
        while (events.Count < count)
        {
            events.AddRange(await TakeSettledAsync());
            if (events.Count < count)
            {
                try { await Task.Delay(50, cts.Token); }
                catch (OperationCanceledException) { throw new TimeoutException($"{events.Count} of {count} shard events in {timeout}"); }
            }
        }
        return events;
    }

    /// <summary>State of each shard that has a report, by index.</summary>
    public async Task<Dictionary<int, ShardState>> ReadShardStatesAsync(string jobId)
    {
        var states = new Dictionary<int, ShardState>();
        await foreach (var report in new ShardReports(Transport.Blobs).ReadAllAsync(jobId)) states[report.Shard.ShardIndex] = report.State;
        return states;
    }

    /// <summary>The checker's verdict on the finalized job's files against the input it was submitted with.</summary>
    public async Task<CheckReport> CheckAsync(string jobId, IEnumerable<string> inputLines)
    {
        async Task<Stream> Blob(string name) => new MemoryStream(await Transport.Blobs.ReadBytesAsync(name));
        using var input = new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', inputLines) + "\n"));
        return await new ResultsChecker(Input).CheckAsync(input, InputFormat.Jsonl,
            await Blob(JobIds.OutputBlob(jobId)), await Blob(JobIds.ErrorsBlob(jobId)), await Blob(JobIds.JobBlob(jobId)));
    }

    /// <summary>One run of the control plane's safety net (the Functions sweep timer): a job whose shards have all
    /// reported but whose finalizer was never told gets a shard-done event on <see cref="SettledQueue"/>.</summary>
    public Task<SweepResult> SweepAsync()
    {
        var jobs = new BlobJobStore(Transport.Blobs);
        var finalizer = new JobFinalizer(Transport.Blobs, jobs, Transport.Checkpoints, Input, _time);
        var settler = new JobSettler(finalizer, new TenantBatches(Transport.Blobs, jobs, new JobSubmitter(Transport.Blobs, jobs, WorkQueue, Input, _time), _time),
            new FileCatalog(Transport.Blobs, _time), new WebhookOutbox(new SqliteWorkQueue(new SqliteWorkQueueOptions
            {
                DatabasePath = Path.Combine(DataPath, "queue.db"), QueueName = "webhooks",
            }, _time)));
        return new JobSweeper(Transport.Blobs, jobs, settler, SettledQueue, _time).SweepAsync();
    }

    public Task<FinalizeResult> FinalizeAsync(string jobId) =>
        new JobFinalizer(Transport.Blobs, new BlobJobStore(Transport.Blobs), Transport.Checkpoints, Input, _time).TryFinalizeAsync(jobId);

    public async Task<List<JsonElement>> ReadLinesAsync(string blob)
    {
        var text = Encoding.UTF8.GetString(await Transport.Blobs.ReadBytesAsync(blob));
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
    }

    /// <summary>Waits until the job has <paramref name="count"/> checkpointed outcomes (30 s at most).</summary>
    public async Task WaitForCheckpointsAsync(string jobId, int count)
    {
        for (var i = 0; i < 1200; i++)
        {
            if ((await ReadCheckpointedIdsAsync(jobId)).Count >= count) return;
            await Task.Delay(25);
        }
        throw new TimeoutException($"no {count} checkpoints in 30 s");
    }

    /// <summary>custom_id of every checkpointed outcome of the job, repeats included.</summary>
    public async Task<List<string>> ReadCheckpointedIdsAsync(string jobId)
    {
        var ids = new List<string>();
        await foreach (var outcome in Transport.Checkpoints.ReadJobAsync(jobId)) ids.Add(outcome.CustomId);
        return ids;
    }

    /// <summary>Shards of 8 lines: one request of 1 token, seven of 1,500 (seconds of work on the tiny model).</summary>
    public static List<string> LongShards(int numShards) =>
        Enumerable.Range(0, numShards * 8).Select(i => Prompt($"r{i}", i % 8 == 0 ? 1 : 1500)).ToList();

    public static string Prompt(string id, int maxTokens) =>
        JsonSerializer.Serialize(new { custom_id = id, prompt = $"tell me about {id}", max_tokens = maxTokens });

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(DataPath, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;
using VicunaBatch.Core.Services;
using VicunaBatch.Execution;
using VicunaBatch.Local;

namespace VicunaBatch.Worker.Tests;

/// <summary>
/// A temporary data folder shared by a test (the submitter and finalizer, as the API and the Finalizer function are
/// on Azure) and the worker under test: the SQLite queues, the folder blob and checkpoint stores.
/// </summary>
internal sealed class WorkerFolder : IDisposable
{
    /// <summary>The one model this folder's jobs name.</summary>
    public const string Model = "tiny";

    /// <summary>A second model the folder's jobs may name: a worker serves it with <c>Model__Name</c>.</summary>
    public const string OtherModel = "tiny-other";

    private readonly ServiceProvider _services;

    public WorkerFolder()
    {
        DataPath = Path.Combine(Path.GetTempPath(), "vicuna-worker-tests", Guid.NewGuid().ToString("N"));
        // the parts a submitter and a finalizer have on this folder, composed as every one-machine host composes them
        _services = new ServiceCollection().AddLocalTransport(DataPath).AddVicunaBatchCore(core => { core.Input = Input; core.Models = [Model, OtherModel]; }).AddShardPorts(Model).BuildServiceProvider();
        Ports = _services.GetRequiredService<ShardPorts>();
        WorkQueue = (SqliteWorkQueue)Ports.Work;
        SettledQueue = (SqliteWorkQueue)Ports.ShardDone;
    }

    public string DataPath { get; }

    /// <summary>The ports the worker under test reads and writes.</summary>
    public ShardPorts Ports { get; }

    public SqliteWorkQueue WorkQueue { get; }

    public SqliteWorkQueue SettledQueue { get; }

    public InputOptions Input { get; } = new() { RequestsPerShard = 8 };

    public async Task<BatchJob> SubmitAsync(IEnumerable<string> lines)
    {
        var jobId = JobIds.New();
        var blob = $"inputs/{jobId}.jsonl";
        await Ports.Blobs.PutBytesAsync(blob, Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"), BlobCondition.IfNotExists);
        return await _services.GetRequiredService<JobSubmitter>().SubmitAsync(new JobSubmission(blob) { JobId = jobId });
    }

    /// <summary>Shards waiting in <paramref name="model"/>'s work queue.</summary>
    public Task<int> CountQueuedAsync(string model) => ((SqliteWorkQueue)_services.GetRequiredService<IWorkQueues>().Of(model)).CountAsync();

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
        await foreach (var report in new ShardReports(Ports.Blobs).ReadAllAsync(jobId)) states[report.Shard.ShardIndex] = report.State;
        return states;
    }

    /// <summary>The checker's verdict on the finalized job's files against the input it was submitted with.</summary>
    public async Task<CheckReport> CheckAsync(string jobId, IEnumerable<string> inputLines)
    {
        async Task<Stream> Blob(string name) => new MemoryStream(await Ports.Blobs.ReadBytesAsync(name));
        using var input = new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', inputLines) + "\n"));
        return await new ResultsChecker(Input).CheckAsync(input, InputFormat.Jsonl,
            await Blob(JobIds.OutputBlob(jobId)), await Blob(JobIds.ErrorsBlob(jobId)), await Blob(JobIds.JobBlob(jobId)));
    }

    /// <summary>
    /// The control plane as <c>serve</c> runs it beside workers on a data folder: the shard-done handler reads
    /// <see cref="SettledQueue"/> until <paramref name="jobId"/> ends (or the timeout passes); returns the job as it ended.
    /// </summary>
    public async Task<BatchJob> RunControlPlaneUntilEndedAsync(string jobId, TimeSpan timeout)
    {
        var ended = new TaskCompletionSource<BatchJob>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource(timeout);
        var handler = _services.GetRequiredService<ShardDoneHandler>().RunAsync(SettledQueue,
            e => { if (e.Job.Id == jobId) ended.TrySetResult(e.Job); }, stop.Token);
        try
        {
            return await ended.Task.WaitAsync(stop.Token);
        }
        catch (OperationCanceledException) { throw new TimeoutException($"job {jobId} did not end within {timeout}"); }
        finally
        {
            await stop.CancelAsync();
            await handler;
        }
    }

    /// <summary>One run of the control plane's safety net (the Functions sweep timer): a job whose shards have all
    /// reported but whose finalizer was never told gets a shard-done event on <see cref="SettledQueue"/>.</summary>
    public Task<SweepResult> SweepAsync() => _services.GetRequiredService<JobSweeper>().SweepAsync();

    public Task<FinalizeResult> FinalizeAsync(string jobId) => _services.GetRequiredService<JobFinalizer>().TryFinalizeAsync(jobId);

    public async Task<List<JsonElement>> ReadLinesAsync(string blob)
    {
        var text = Encoding.UTF8.GetString(await Ports.Blobs.ReadBytesAsync(blob));
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
        await foreach (var outcome in Ports.Checkpoints.ReadJobAsync(jobId)) ids.Add(outcome.CustomId);
        return ids;
    }

    /// <summary>Shards of 8 lines: one request of 1 token, seven of 1,500 (seconds of work on the tiny model).</summary>
    /// <summary>Settings that serve <see cref="Model"/> from <see cref="Testing.LongRunningModel"/>: every <see cref="LongShards"/>
    /// request runs to its 1,500 tokens, so a shard is still running when a lock expires or a signal comes.</summary>
    public static Dictionary<string, string> WithLongRunningModel(Dictionary<string, string> settings)
    {
        settings["Model__Path"] = Testing.LongRunningModel.Path;
        settings["Model__Name"] = Model;
        return settings;
    }

    public static List<string> LongShards(int numShards) =>
        Enumerable.Range(0, numShards * 8).Select(i => Prompt($"r{i}", i % 8 == 0 ? 1 : 1500)).ToList();

    public static string Prompt(string id, int maxTokens) =>
        JsonSerializer.Serialize(new { custom_id = id, prompt = $"tell me about {id}", max_tokens = maxTokens });

    public void Dispose()
    {
        _services.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(DataPath, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

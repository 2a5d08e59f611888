using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Local;

namespace VicunaBatch.Execution.Tests;

/// <summary>
/// A temporary data folder with the parts around an engine chain, composed as the one-machine hosts compose them
/// (<c>AddLocalTransport</c>, <c>AddVicunaBatchCore</c>, <c>AddShardPorts</c>): a submitter, the SQLite queues, the
/// folder stores. Shards of 8 requests.
/// </summary>
internal sealed class ExecutionFolder : IDisposable
{
    /// <summary>The one model this folder's jobs name.</summary>
    public const string Model = "tiny";

    private readonly string _path = Path.Combine(Path.GetTempPath(), "vicuna-execution-tests", Guid.NewGuid().ToString("N"));

    public ExecutionFolder()
    {
        Services = new ServiceCollection().AddLocalTransport(_path).AddVicunaBatchCore(core => { core.Input = Input; core.Models = [Model]; }).AddShardPorts(Model).BuildServiceProvider();
        Ports = Services.GetRequiredService<ShardPorts>();
    }

    public ServiceProvider Services { get; }

    public ShardPorts Ports { get; }

    public InputOptions Input { get; } = new() { RequestsPerShard = 8 };

    public async Task<BatchJob> SubmitAsync(IEnumerable<string> lines)
    {
        var jobId = JobIds.New();
        var blob = $"inputs/{jobId}.jsonl";
        await Ports.Blobs.PutBytesAsync(blob, Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"), BlobCondition.IfNotExists);
        return await Services.GetRequiredService<JobSubmitter>().SubmitAsync(new JobSubmission(blob) { JobId = jobId });
    }

    /// <summary>custom_id of every checkpointed outcome of the job, repeats included.</summary>
    public async Task<List<string>> ReadCheckpointedIdsAsync(string jobId)
    {
        var ids = new List<string>();
        await foreach (var outcome in Ports.Checkpoints.ReadJobAsync(jobId)) ids.Add(outcome.CustomId);
        return ids;
    }

    public static string Prompt(string id, int maxTokens) =>
        JsonSerializer.Serialize(new { custom_id = id, prompt = $"tell me about {id}", max_tokens = maxTokens });

    public void Dispose()
    {
        Services.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(_path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

using System.Text;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Local.Tests;

/// <summary>
/// Each served model has its own work queue in the data folder: a job's shards go to its model's queue alone, and a job
/// naming a model nobody serves fails before any shard is sent.
/// </summary>
public sealed class ModelQueuesTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly ServiceProvider _services;

    public ModelQueuesTests()
    {
        _services = new ServiceCollection().AddSingleton<TimeProvider>(new ManualTimeProvider(LocalRig.Start))
            .AddLocalTransport(_folder.Path, local => local.FlushToDisk = false)
            .AddVicunaBatchCore(core => core.Models = ["big", "small"])
            .BuildServiceProvider();
    }

    public void Dispose()
    {
        _services.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _folder.Dispose();
    }

    private LocalWorkQueues Queues => _services.GetRequiredService<LocalWorkQueues>();

    private async Task<BatchJob> SubmitAsync(string jobId, string input)
    {
        var blob = $"inputs/{jobId}.jsonl";
        await _services.GetRequiredService<IBlobStore>().PutBytesAsync(blob, Encoding.UTF8.GetBytes(input), BlobCondition.None);
        return await _services.GetRequiredService<JobSubmitter>().SubmitAsync(new JobSubmission(blob) { JobId = jobId });
    }

    private Task<int> CountAsync(string model) => ((SqliteWorkQueue)Queues.Of(model)).CountAsync();

    [Fact]
    public async Task SubmitAsync_linesNamingTheSecondModel_sendsItsShardsToThatModelsQueueOnly()
    {
        var job = await SubmitAsync("batch_small", """
            {"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"small","messages":[{"role":"user","content":"hi"}]}}
            {"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"small","messages":[{"role":"user","content":"yo"}]}}

            """);

        Assert.Equal((JobStatus.InProgress, "small"), (job.Status, job.Model));
        Assert.Equal((0, 1), (await CountAsync("big"), await CountAsync("small")));
    }

    [Fact]
    public async Task SubmitAsync_simpleLinesNamingNoModel_runOnTheDefault()
    {
        var job = await SubmitAsync("batch_default", "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n");

        Assert.Equal("big", job.Model);
        Assert.Equal((1, 0), (await CountAsync("big"), await CountAsync("small")));
    }

    [Fact]
    public async Task SubmitAsync_aModelNobodyServes_failsTheJobWithModelNotFoundAndSendsNothing()
    {
        var job = await SubmitAsync("batch_gpt", """
            {"custom_id":"a","method":"POST","url":"/v1/completions","body":{"model":"gpt-4o-mini","prompt":"one"}}

            """);

        Assert.Equal(JobStatus.Failed, job.Status);
        var error = Assert.Single(job.Errors!.Data);
        Assert.Equal(("model_not_found", "body.model", 1), (error.Code, error.Param, error.Line));
        Assert.Equal("gpt-4o-mini", job.Model);
        Assert.Equal((0, 0), (await CountAsync("big"), await CountAsync("small")));
    }

    [Fact]
    public async Task MoveUnnamedShardsAsync_shardsAnEarlierVersionQueued_moveToTheModelWithTheirIds()
    {
        var unnamed = new SqliteWorkQueue(new SqliteWorkQueueOptions
        {
            DatabasePath = Path.Combine(_folder.Path, "queue.db"), QueueName = LocalDataFolder.UnnamedWorkQueueName,
        }, _services.GetRequiredService<TimeProvider>());
        await unnamed.SendAsync([new OutgoingMessage("batch_old:0", "{}"), new OutgoingMessage("batch_old:1", "{}")]);

        Assert.Equal(2, await Queues.MoveUnnamedShardsAsync("big"));

        Assert.Equal(0, await unnamed.CountAsync());
        var moved = await Queues.Of("big").ReceiveAsync(10);
        Assert.Equal(["batch_old:0", "batch_old:1"], moved.Select(m => m.MessageId).Order());
        Assert.Equal(0, await Queues.MoveUnnamedShardsAsync("big")); // nothing left: a second start moves nothing
    }
}

using System.Text;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Local.Tests.ControlPlane;

/// <summary>
/// Issue 23: files expire and are deleted as OpenAI's are, and neither loses a running batch's input: over a data folder
/// composed as the hosts compose it, with the clock in the test's hands and shards run by a stand-in executor.
/// </summary>
public sealed class FileSweeperTests : IDisposable
{
    private const string Owner = "tenant-1";
    private const string Input = "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n{\"custom_id\":\"b\",\"prompt\":\"two\"}\n{\"custom_id\":\"c\",\"prompt\":\"three\"}\n";

    private readonly TempFolder _folder = new();
    /// <summary>Now, as the folder store dates a job's output blob (its file's <c>created_at</c>) by the real clock.</summary>
    private readonly ManualTimeProvider _time = new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
    private readonly ServiceProvider _services;

    public FileSweeperTests() =>
        _services = new ServiceCollection().AddSingleton<TimeProvider>(_time).AddLocalTransport(_folder.Path, local => local.FlushToDisk = false)
            .AddVicunaBatchCore(core =>
            {
                core.Input = new() { RequestsPerShard = 2 };
                core.Models = LocalRig.Models.Names;
            })
            .BuildServiceProvider();

    public void Dispose()
    {
        _services.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _folder.Dispose();
    }

    private FileCatalog Files => _services.GetRequiredService<FileCatalog>();
    private TenantBatches Batches => _services.GetRequiredService<TenantBatches>();
    private FileSweeper Sweeper => _services.GetRequiredService<FileSweeper>();
    private IBlobStore Blobs => _services.GetRequiredService<IBlobStore>();

    private Task<StoredFile> UploadAsync(long? expiresAfter = null) =>
        Files.UploadAsync(Owner, FilePurpose.Batch, "in.jsonl", new MemoryStream(Encoding.UTF8.GetBytes(Input)), expiresAfter);

    private async Task<string> CreateBatchAsync(StoredFile file, long? outputExpiresAfter = null) =>
        (await Batches.CreateAsync(new BatchCreation(Owner, file, BatchEndpoint.Completions) { OutputExpiresAfterSeconds = outputExpiresAfter })).Job.Id;

    /// <summary>Every shard of the queue through a <see cref="ShardProcessor"/> (the batch reads its input here).</summary>
    private async Task RunShardsAsync()
    {
        var work = _services.GetRequiredService<IWorkQueues>().Of(LocalRig.Models.Default);
        var processor = new ShardProcessor(Blobs, _services.GetRequiredService<ICheckpointStore>(), work, _services.GetRequiredService<IJobStore>(),
            new EchoExecutor(), _services.GetRequiredService<InputOptions>(), new ShardProcessorOptions { LockRenewalInterval = TimeSpan.Zero }, _time);
        IReadOnlyList<ReceivedMessage> messages;
        while ((messages = await work.ReceiveAsync(10)).Count > 0)
            foreach (var message in messages) await processor.ProcessAsync(message);
    }

    private async Task<string[]> CustomIdsOfAsync(string blob) =>
        Encoding.UTF8.GetString(await Blobs.ReadBytesAsync(blob)).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("custom_id").GetString()!).ToArray();

    private async Task<List<string>> BlobsNamingAsync(string fileId) => await Blobs.ListAsync("").Where(n => n.Contains(fileId)).ToListAsync();

    [Fact]
    public async Task DeleteAsync_fileOfARunningBatch_isGoneAtOnceButTheBatchReadsItAndItsContentGoesWhenTheBatchEnds()
    {
        var file = await UploadAsync();
        var jobId = await CreateBatchAsync(file);

        Assert.True(await Files.DeleteAsync(Owner, file.Id));
        Assert.Null(await Files.GetAsync(Owner, file.Id));
        Assert.Equal(new FileSweepResult(0, 0), await Sweeper.SweepAsync()); // the batch still runs: its input stays
        Assert.True(await Blobs.ExistsAsync(file.Blob));

        await RunShardsAsync();
        var ending = await _services.GetRequiredService<JobSettler>().SettleAsync(jobId);

        Assert.Equal(JobStatus.Completed, ending!.Job.Status);
        Assert.Equal(["a", "b", "c"], await CustomIdsOfAsync(JobIds.OutputBlob(jobId)));
        Assert.Empty(await BlobsNamingAsync(file.Id)); // content, metadata, hold, listing, expiry and removal record
    }

    [Fact]
    public async Task SweepAsync_holdOfABatchThatEndedWithoutReleasingIt_isReleasedAndTheContentDeleted()
    {
        var file = await UploadAsync();
        var jobId = await CreateBatchAsync(file);
        Assert.True(await Files.DeleteAsync(Owner, file.Id));
        await RunShardsAsync();
        // finalized as by a process that stopped before the job's ending released its hold
        Assert.Equal(FinalizeStatus.Finalized, (await _services.GetRequiredService<JobFinalizer>().TryFinalizeAsync(jobId)).Status);
        Assert.True(await Blobs.ExistsAsync(file.Blob));

        Assert.Equal(new FileSweepResult(0, 1), await Sweeper.SweepAsync());

        Assert.Empty(await BlobsNamingAsync(file.Id));
    }

    [Fact]
    public async Task SweepAsync_filesPastExpiresAt_areRemovedWithTheirBlobsAndOthersStay()
    {
        var brief = await UploadAsync(expiresAfter: FileExpiry.MinSeconds);
        var longer = await UploadAsync(expiresAfter: FileExpiry.MinSeconds + 60);
        Assert.Equal(new FileSweepResult(0, 0), await Sweeper.SweepAsync());
        _time.Advance(TimeSpan.FromSeconds(FileExpiry.MinSeconds));
        Assert.Null(await Files.GetAsync(Owner, brief.Id)); // expired: missing at once, before any sweep
        Assert.NotEmpty(await BlobsNamingAsync(brief.Id));

        Assert.Equal(new FileSweepResult(1, 0), await Sweeper.SweepAsync()); // no batch holds it: removed whole at once

        Assert.Empty(await BlobsNamingAsync(brief.Id));
        Assert.Equal(longer, await Files.GetAsync(Owner, longer.Id));
        Assert.Equal("{\"custom_id\":\"a\"", Encoding.UTF8.GetString(await Blobs.ReadBytesAsync(longer.Blob))[..16]);
        Assert.Equal(new FileSweepResult(0, 0), await Sweeper.SweepAsync());
    }

    [Fact]
    public async Task SweepAsync_outputExpiresAfter_expiresTheBatchsOutputAndErrorFilesWhichItStillNames()
    {
        var jobId = await CreateBatchAsync(await UploadAsync(), outputExpiresAfter: 7200);
        await RunShardsAsync();
        var job = (await _services.GetRequiredService<JobSettler>().SettleAsync(jobId))!.Job;
        var output = (await Files.GetAsync(Owner, job.OutputFileId!))!;
        Assert.Equal(output.CreatedAt + 7200, output.ExpiresAt);
        Assert.Equal(output.CreatedAt + 7200, (await Files.GetAsync(Owner, job.ErrorFileId!))!.ExpiresAt);
        _time.Advance(TimeSpan.FromSeconds(output.CreatedAt + 7200 - _time.GetUtcNow().ToUnixTimeSeconds()));

        Assert.Equal(new FileSweepResult(2, 0), await Sweeper.SweepAsync());

        Assert.Null(await Files.GetAsync(Owner, output.Id));
        Assert.False(await Blobs.ExistsAsync(JobIds.OutputBlob(jobId)));
        var again = await Batches.WithFileIdsAsync((await _services.GetRequiredService<IJobStore>().GetAsync(jobId))!.Job, Files);
        Assert.Equal((job.OutputFileId, job.ErrorFileId), (again.OutputFileId, again.ErrorFileId)); // named still, never registered again
        Assert.Null(await Files.GetAsync(Owner, output.Id));
    }

    [Fact]
    public async Task DeleteAsync_outputFileOfAnEndedBatch_deletesItsContentAndTheBatchStillNamesIt()
    {
        var jobId = await CreateBatchAsync(await UploadAsync());
        await RunShardsAsync();
        var job = (await _services.GetRequiredService<JobSettler>().SettleAsync(jobId))!.Job;
        Assert.Null((await Files.GetAsync(Owner, job.OutputFileId!))!.ExpiresAt); // no output_expires_after: never

        Assert.True(await Files.DeleteAsync(Owner, job.OutputFileId!));

        Assert.False(await Blobs.ExistsAsync(JobIds.OutputBlob(jobId)));
        Assert.True(await Blobs.ExistsAsync(JobIds.ErrorsBlob(jobId)));
        var again = await Batches.WithFileIdsAsync((await _services.GetRequiredService<IJobStore>().GetAsync(jobId))!.Job, Files);
        Assert.Equal(job.OutputFileId, again.OutputFileId);
        Assert.Null(await Files.GetAsync(Owner, job.OutputFileId!));
        Assert.Equal([job.ErrorFileId!], (await Files.ListAsync(Owner, "batch_output", null, 10, false)).Items.Select(f => f.Id));
    }
}

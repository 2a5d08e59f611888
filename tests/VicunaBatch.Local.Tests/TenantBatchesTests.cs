using System.Text;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Local.Tests;

/// <summary>
/// Issue 22, item 5: a batch create that is refused or fails before its job is stored leaves nothing behind — no owner
/// record, webhook secret or index entry that names no job.
/// </summary>
public sealed class TenantBatchesTests : IDisposable
{
    private const string Owner = "tenant-1";
    private const string Input = """{"custom_id":"a","prompt":"one"}""" + "\n";
    private readonly LocalRig _rig = new();

    public void Dispose() => _rig.Dispose();

    private async Task<StoredFile> UploadAsync() =>
        await new FileCatalog(_rig.Blobs, _rig.Time).UploadAsync(Owner, FilePurpose.Batch, "in.jsonl", new MemoryStream(Encoding.UTF8.GetBytes(Input)));

    private async Task<List<string>> BlobsAsync() => await _rig.Blobs.ListAsync("").ToListAsync();

    [Fact]
    public async Task CreateAsync_metadataPastOpenAisLimits_throwsBeforeWritingAnything()
    {
        var file = await UploadAsync();
        var before = await BlobsAsync();
        var batches = new TenantBatches(_rig.Blobs, _rig.Jobs, _rig.Submitter, _rig.Time);
        var metadata = Enumerable.Range(0, 17).ToDictionary(i => $"k{i}", _ => "v");

        var e = await Assert.ThrowsAsync<ArgumentException>(() => batches.CreateAsync(new BatchCreation(Owner, file, BatchEndpoint.Completions) { Metadata = metadata }));

        Assert.Contains("at most 16 pairs", e.Message);
        Assert.Equal(before, await BlobsAsync());
    }

    [Fact]
    public async Task CreateAsync_jobThatCannotBeStored_leavesNoRecordSecretOrIndexEntry()
    {
        var file = await UploadAsync();
        var before = await BlobsAsync();
        var store = new FailingJobBlobs(_rig.Blobs);
        var jobs = new BlobJobStore(store);
        var batches = new TenantBatches(store, jobs, new JobSubmitter(store, jobs, new SharedWorkQueue(_rig.Queue), LocalRig.Models, _rig.Input, _rig.Time), _rig.Time);

        await Assert.ThrowsAsync<JobStoreException>(() => batches.CreateAsync(new BatchCreation(Owner, file, BatchEndpoint.Completions)
        {
            Webhook = new WebhookSettings("https://example.com/hook", ["batch.completed"]), WebhookSecret = "whsec_" + new string('A', 32),
        }));

        Assert.Equal(before, await BlobsAsync());
        Assert.False(Directory.Exists(Path.GetDirectoryName(_rig.Blobs.PathOf("jobs/x")))); // no empty folder either
        Assert.False(Directory.Exists(Path.GetDirectoryName(_rig.Blobs.PathOf(BatchRecord.IndexPrefix(Owner) + "x"))));
        Assert.Empty((await batches.ListAsync(Owner, null, 10)).Items);
    }

    /// <summary>The real store, except that every write of a job document fails as unavailable.</summary>
    private sealed class FailingJobBlobs(IBlobStore inner) : IBlobStore
    {
        public Task<BlobProperties> PutAsync(string name, Stream content, BlobCondition condition, CancellationToken cancellationToken = default) =>
            name.EndsWith("/job.json", StringComparison.Ordinal)
                ? throw new BlobStoreException(BlobStoreFailure.Unavailable, name, $"could not write blob {name}: injected")
                : inner.PutAsync(name, content, condition, cancellationToken);

        public Task<Stream> OpenReadAsync(string name, BlobRange? range = null, CancellationToken cancellationToken = default) => inner.OpenReadAsync(name, range, cancellationToken);
        public Task<BlobProperties?> GetPropertiesAsync(string name, CancellationToken cancellationToken = default) => inner.GetPropertiesAsync(name, cancellationToken);
        public IAsyncEnumerable<string> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);
        public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default) => inner.DeleteAsync(name, cancellationToken);
    }
}

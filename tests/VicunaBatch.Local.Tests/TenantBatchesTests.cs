using System.Text;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Local.Tests;

/// <summary>
/// Issue 22: a batch create that is refused leaves nothing behind.
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
}

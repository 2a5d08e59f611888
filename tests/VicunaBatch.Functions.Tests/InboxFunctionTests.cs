using System.Text;
using Azure.Storage.Blobs;
using VicunaBatch.Azure.Tests;
using VicunaBatch.Core;

namespace VicunaBatch.Functions.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class InboxFunctionTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const string Input = "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n{\"custom_id\":\"b\",\"prompt\":\"two\"}\n{\"custom_id\":\"c\",\"prompt\":\"three\"}\n";

    private FunctionsRig _rig = null!;

    public Task InitializeAsync()
    {
        _rig = new FunctionsRig(azurite, new Dictionary<string, string?> { ["Inbox:WebhookUrl"] = "https://example.test/inbox-hook" });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    /// <summary>What a person does: upload a blob into the inbox container (outside the app's ports).</summary>
    private async Task<BlobClient> DropAsync(string name, string content)
    {
        _ = _rig.Blobs; // containers exist once the store is resolved
        var blob = azurite.Blobs.GetBlobContainerClient(_rig.Containers.Inbox).GetBlobClient(name);
        await blob.UploadAsync(BinaryData.FromString(content), overwrite: true);
        return blob;
    }

    [Fact]
    public async Task Run_droppedFile_becomesAJobAndARetriedTriggerReusesIt()
    {
        var blob = await DropAsync("daily/prompts.jsonl", Input);

        var job = await _rig.Function<InboxFunction>().RunAsync(blob, default);
        var retried = await _rig.Function<InboxFunction>().RunAsync(blob, default);

        var etag = (await blob.GetPropertiesAsync()).Value.ETag.ToString();
        Assert.Equal(InboxSubmitter.JobIdFor("daily/prompts.jsonl", etag), job!.Id);
        Assert.Equal(job.Id, retried!.Id);
        Assert.Equal((JobStatus.InProgress, 3), (job.Status, job.RequestCounts.Total));
        Assert.Equal(2, await _rig.Shards.CountAsync()); // sent once: the retry found the job past validating
        Assert.Equal($"files/{job.Id}/content.jsonl", job.InputFileId);
        Assert.Equal(Input, Encoding.UTF8.GetString(await _rig.Blobs.ReadBytesAsync(job.InputFileId)));
        Assert.Equal("daily/prompts.jsonl", job.Metadata!["inbox_blob"]);
        Assert.Equal("https://example.test/inbox-hook", job.Webhook!.Url);

        await _rig.RunShardsAsync();
        await _rig.RunFinalizerAsync();
        Assert.Equal(new RequestCounts(3, 3, 0), (await _rig.Jobs.GetAsync(job.Id))!.Job.RequestCounts);
    }

    [Fact]
    public async Task Run_sameNameOverwritten_isANewJobOnItsOwnCopy()
    {
        var first = await _rig.Function<InboxFunction>().RunAsync(await DropAsync("p.txt", "one\ntwo\n"), default);
        var second = await _rig.Function<InboxFunction>().RunAsync(await DropAsync("p.txt", "three\n"), default);

        Assert.NotEqual(first!.Id, second!.Id);
        Assert.Equal((2, 1), (first.RequestCounts.Total, second.RequestCounts.Total));
        Assert.Equal("one\ntwo\n", Encoding.UTF8.GetString(await _rig.Blobs.ReadBytesAsync(first.InputFileId)));
        Assert.EndsWith(".txt", first.InputFileId);
    }

    [Fact]
    public async Task Run_fileWithOnlyBadLines_endsAtOnce()
    {
        var job = await _rig.Function<InboxFunction>().RunAsync(await DropAsync("bad.jsonl", "{nope\n"), default);

        Assert.Equal((JobStatus.Completed, new RequestCounts(1, 0, 1)), (job!.Status, job.RequestCounts));
    }

    [Fact]
    public async Task Run_blobDeletedBeforeTheTrigger_submitsNothing()
    {
        var blob = await DropAsync("gone.jsonl", Input);
        await blob.DeleteAsync();

        Assert.Null(await _rig.Function<InboxFunction>().RunAsync(blob, default));
        Assert.Equal(0, await _rig.Shards.CountAsync());
    }
}

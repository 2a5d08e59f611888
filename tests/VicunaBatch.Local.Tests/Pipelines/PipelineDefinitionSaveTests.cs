using VicunaBatch.Core.Pipelines;

namespace VicunaBatch.Local.Tests.Pipelines;

/// <summary><see cref="PipelineDefinitionStore.SaveAsync"/>: a host that reads definitions from a folder keeps them where the deliverer finds their secret.</summary>
public sealed class PipelineDefinitionSaveTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly FolderBlobStore _blobs;

    public PipelineDefinitionSaveTests() => _blobs = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _folder.Combine("blobs"), FlushToDisk = false });

    public void Dispose() => _folder.Dispose();

    private static string Definition(string secret) => $$$"""
        {"name": "notes", "source": {"folder": "docs"}, "output": {"folder": "out"},
         "prompt": "Summarize: {text}", "webhook": {"url": "https://example.com/hook", "secret": "{{{secret}}}"}}
        """;

    [Fact]
    public async Task SaveAsync_thenTheSecretOfARunOfThatPipeline_isItsWebhookSecret_andRewrittenOnlyWhenChanged()
    {
        var store = new PipelineDefinitionStore(_blobs);
        var first = WebhookSecretOf(1);

        Assert.Equal("notes", (await store.SaveAsync(Definition(first))).Name);
        var etag = (await _blobs.GetPropertiesAsync(PipelineDefinitionStore.BlobName("notes")))!.ETag;
        await store.SaveAsync(Definition(first));
        Assert.Equal(etag, (await _blobs.GetPropertiesAsync(PipelineDefinitionStore.BlobName("notes")))!.ETag);

        const string runId = "pl-notes-20261207T021500000";
        Assert.Equal(first, await store.WebhookSecretOfRunAsync(runId));
        await store.SaveAsync(Definition(WebhookSecretOf(2)));
        Assert.Equal(WebhookSecretOf(2), await store.WebhookSecretOfRunAsync(runId));
        Assert.Null(await store.WebhookSecretOfRunAsync("batch_not_a_run"));
    }

    private static string WebhookSecretOf(int seed) => "whsec_" + Convert.ToBase64String(Enumerable.Repeat((byte)seed, 32).ToArray());
}

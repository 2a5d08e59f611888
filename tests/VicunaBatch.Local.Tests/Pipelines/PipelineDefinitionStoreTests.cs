using System.Text;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Local.Tests.Pipelines;

public sealed class PipelineDefinitionStoreTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly FolderBlobStore _blobs;

    public PipelineDefinitionStoreTests() => _blobs = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _folder.Path });

    public void Dispose() => _folder.Dispose();

    private static string Definition(string name, string webhook = "") =>
        $$"""{"name":"{{name}}","source":{"container":"docs"},"prompt":"{text}","output":{"container":"sums"}{{webhook}}}""";

    private Task PutAsync(string blob, string json) => _blobs.PutBytesAsync(blob, Encoding.UTF8.GetBytes(json), BlobCondition.None);

    [Fact]
    public async Task ListAsync_goodDefinitionsAndProblemsForTheRest()
    {
        await PutAsync("pipelines/_definitions/a.json", Definition("a"));
        await PutAsync("pipelines/_definitions/b.json", Definition("not-b"));
        await PutAsync("pipelines/_definitions/c.json", """{"name":"c"}""");
        await PutAsync("pipelines/_definitions/readme.txt", "not a definition");
        await PutAsync("pipelines/a/watermark.json", "{}");

        var (definitions, problems) = await new PipelineDefinitionStore(_blobs).ListAsync();

        Assert.Equal(["a"], definitions.Select(d => d.Name));
        Assert.Equal(
            [("pipelines/_definitions/b.json", "name \"not-b\" must match the blob name (pipelines/_definitions/not-b.json)"),
             ("pipelines/_definitions/c.json", "source: is required")],
            problems.Select(p => (p.BlobName, p.Reason)));
    }

    [Fact]
    public async Task WebhookSecretOfRunAsync_thePipelinesOwnSecret()
    {
        await PutAsync("pipelines/_definitions/a.json", Definition("a", ""","webhook":{"url":"https://h.example/p","secret":"whsec_AAAA"}"""));
        await PutAsync("pipelines/_definitions/b.json", Definition("b"));
        var store = new PipelineDefinitionStore(_blobs);

        Assert.Equal("whsec_AAAA", await store.WebhookSecretOfRunAsync("pl-a-20261201T020000000"));
        Assert.Null(await store.WebhookSecretOfRunAsync("pl-b-20261201T020000000"));
        Assert.Null(await store.WebhookSecretOfRunAsync("pl-missing-20261201T020000000"));
        Assert.Null(await store.WebhookSecretOfRunAsync("batch_0123"));
    }
}

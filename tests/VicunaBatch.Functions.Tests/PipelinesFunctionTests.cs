using System.Text.Json;
using System.Text;
using Azure.Storage.Blobs;
using Microsoft.Azure.Functions.Worker;
using VicunaBatch.Azure.Tests;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Testing;

namespace VicunaBatch.Functions.Tests;

/// <summary>
/// The Pipelines timer called directly on Azurite: the definition in the pipelines container, documents in a source
/// container, summaries in an output container; stages run by the rig's worker (echo executor) and Finalizer function
/// between ticks, since the timer waits for a stage only <c>Pipelines__StageWait</c> (zero here).
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class PipelinesFunctionTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const string Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    private FunctionsRig _rig = null!;
    private WebhookReceiver _receiver = null!;
    private BlobContainerClient _source = null!, _output = null!;

    public async Task InitializeAsync()
    {
        _rig = new FunctionsRig(azurite, new Dictionary<string, string?>
        {
            ["Pipelines:ModelPath"] = Path.Combine(Checkout.Root, "models", "tiny"),
            ["Pipelines:StageWait"] = "00:00:00",
        });
        _receiver = await WebhookReceiver.StartAsync();
        _source = azurite.Blobs.GetBlobContainerClient(azurite.UniqueName("docs"));
        _output = azurite.Blobs.GetBlobContainerClient(azurite.UniqueName("summaries"));
        await _source.CreateIfNotExistsAsync();
        await _output.CreateIfNotExistsAsync();
    }

    public async Task DisposeAsync()
    {
        await _receiver.DisposeAsync();
        await _rig.DisposeAsync();
    }

    private Task<IReadOnlyList<PipelineTickResult>> TickAsync() => _rig.Function<PipelinesFunction>().RunAsync(new TimerInfo(), default);

    private async Task PutDefinitionAsync(string name, string json) =>
        await _rig.Blobs.PutBytesAsync(PipelineDefinitionStore.BlobName(name), Encoding.UTF8.GetBytes(json), BlobCondition.None);

    [Fact]
    public async Task Run_scheduledPipeline_runsAtItsTimeStageByStageAndSendsItsSignedWebhook()
    {
        await _source.UploadBlobAsync("notes/short.txt", BinaryData.FromString("The night batch finished early."));
        await _source.UploadBlobAsync("notes/long.md", BinaryData.FromString("# Long\n\n" + string.Join(' ', Enumerable.Repeat("queue worker shard engine", 60))));
        await _source.UploadBlobAsync("notes/empty.txt", BinaryData.FromString(""));
        await _source.UploadBlobAsync("elsewhere/skip.txt", BinaryData.FromString("outside the prefix"));
        await PutDefinitionAsync("nightly", $$$"""
            {"name":"nightly","source":{"container":"{{{_source.Name}}}","prefix":"notes/"},"prompt":"S: {text}","max_tokens":16,
             "schedule":"0 2 * * *","output":{"container":"{{{_output.Name}}}","prefix":"out/"},"chunking":{"chunk_tokens":64,"overlap_tokens":8},
             "webhook":{"url":"{{{_receiver.Url}}}","secret":"{{{Secret}}}"}}
            """);
        await PutDefinitionAsync("local-only", """{"name":"local-only","source":{"folder":"d"},"prompt":"{text}","schedule":"* * * * *","output":{"folder":"o"}}""");

        var marked = await TickAsync(); // 2023-11-14 22:13 UTC: marks the time
        _rig.Time.Advance(TimeSpan.FromHours(3)); // 01:13: not yet
        var early = await TickAsync();
        _rig.Time.Advance(TimeSpan.FromHours(1)); // 02:13: due
        var ticks = new List<PipelineTickResult> { Assert.Single(await TickAsync()) };
        while (ticks[^1].Run?.Status == PipelineRunStatus.InProgress && ticks.Count < 10)
        {
            await _rig.RunShardsAsync();
            await _rig.RunFinalizerAsync();
            _rig.Time.Advance(TimeSpan.FromMinutes(1));
            ticks.Add(Assert.Single(await TickAsync()));
        }
        await _rig.RunDelivererAsync();

        Assert.Equal(PipelineTickOutcome.NotDue, Assert.Single(marked).Outcome); // local-only is skipped: folders are not containers
        Assert.Equal(PipelineTickOutcome.NotDue, Assert.Single(early).Outcome);
        var done = ticks[^1].Run!;
        Assert.Equal(PipelineRunStatus.Completed, done.Status);
        Assert.All(ticks.SkipLast(1), t => Assert.Equal((PipelineRunStatus.InProgress, done.RunId), (t.Run!.Status, t.Run.RunId)));
        Assert.Equal(done.Manifest!.Stages.Count, ticks.Count - 1);
        Assert.True(done.Manifest.Stages.Count >= 2, "the long document is reduced");
        Assert.Equal(
            [("empty.txt", ManifestDocumentStatus.Error), ("long.md", ManifestDocumentStatus.Summarized), ("short.txt", ManifestDocumentStatus.Summarized)],
            done.Manifest.Documents.Select(d => (d.Key, d.Status)));
        Assert.Equal("echo: S: The night batch finished early.\n", (await _output.GetBlobClient("out/short.txt.summary.md").DownloadContentAsync()).Value.Content.ToString());
        Assert.True((await _output.GetBlobClient($"out/_runs/{done.RunId}/manifest.json").ExistsAsync()).Value);

        var (status, headers, body) = Assert.Single(_receiver.Received);
        Assert.Equal(200, status);
        Assert.Equal(WebhookVerifyResult.Valid, WebhookSigner.Verify(Secret, headers, body, _rig.Time.GetUtcNow()));
        var evt = JsonDocument.Parse(body).RootElement;
        Assert.Equal(("pipeline.run.completed", done.RunId), (evt.GetProperty("type").GetString(), evt.GetProperty("data").GetProperty("run_id").GetString()));

        _rig.Time.Advance(TimeSpan.FromDays(1)); // the next night: nothing new
        Assert.Equal(PipelineRunStatus.NothingToDo, Assert.Single(await TickAsync()).Run!.Status);
    }

    [Fact]
    public async Task Run_withModelSourceUri_readsTheTokenizerAndConfigFromBlobStorage()
    {
        var models = azurite.Blobs.GetBlobContainerClient(azurite.UniqueName("models"));
        await models.CreateIfNotExistsAsync();
        foreach (var name in new[] { "genai_config.json", "tokenizer.model", "model.onnx" })
            await models.GetBlobClient($"tiny/{name}").UploadAsync(Path.Combine(Checkout.Root, "models", "tiny", name));
        var source = new Uri(models.Uri + "/tiny");
        await using var rig = new FunctionsRig(azurite, new Dictionary<string, string?> { ["Pipelines:ModelSourceUri"] = source.ToString() });
        var definition = "{\"name\":\"nightly\",\"source\":{\"container\":\"" + _source.Name + "\"},\"prompt\":\"{text}\",\"schedule\":\"0 2 * * *\",\"output\":{\"container\":\"" + _output.Name + "\"}}";
        await rig.Blobs.PutBytesAsync(PipelineDefinitionStore.BlobName("nightly"), Encoding.UTF8.GetBytes(definition), BlobCondition.None);

        var first = await rig.Function<PipelinesFunction>().RunAsync(new TimerInfo(), default);

        Assert.Equal(PipelineTickOutcome.NotDue, Assert.Single(first).Outcome); // the timer runs: the model's tokenizer was read
    }

    [Fact]
    public async Task Run_withModelSourceUri_withoutATokenizer_failsNamingIt()
    {
        var models = azurite.Blobs.GetBlobContainerClient(azurite.UniqueName("models"));
        await models.CreateIfNotExistsAsync();
        await models.GetBlobClient("tiny/genai_config.json").UploadAsync(Path.Combine(Checkout.Root, "models", "tiny", "genai_config.json"));
        var source = new Uri(models.Uri + "/tiny");
        await using var rig = new FunctionsRig(azurite, new Dictionary<string, string?> { ["Pipelines:ModelSourceUri"] = source.ToString() });

        var error = await Assert.ThrowsAsync<Inference.Package.ModelPackageException>(() => rig.Function<PipelinesFunction>().RunAsync(new TimerInfo(), default));

        Assert.Equal($"{source}/tokenizer.model: blob not found", error.Message);
    }

    [Fact]
    public async Task Run_withoutModelPath_doesNothing()
    {
        await using var rig = new FunctionsRig(azurite);
        await PutDefinitionAsync("nightly", """{"name":"nightly","source":{"container":"abc"},"prompt":"{text}","schedule":"* * * * *","output":{"container":"abd"}}""");

        Assert.Empty(await rig.Function<PipelinesFunction>().RunAsync(new TimerInfo(), default));
    }
}

using System.Text.Json;
using System.Text;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Local.Tests.Webhooks;

namespace VicunaBatch.Cli.Tests;

/// <summary><c>serve --pipelines DIR</c>: a definition on a every-second NCRONTAB schedule runs through serve's own worker and finalizer.</summary>
public sealed class ServePipelinesTests : IDisposable
{
    private const string Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Serve_withPipelines_runsTheScheduledPipelineAndSendsItsSignedWebhook()
    {
        await using var receiver = new LoopbackReceiver();
        var pipelines = Path.Combine(_folder.Root, "pipelines");
        Directory.CreateDirectory(Path.Combine(pipelines, "docs"));
        File.WriteAllText(Path.Combine(pipelines, "docs", "note.txt"), "The night batch finished early.");
        File.WriteAllText(Path.Combine(pipelines, "every-second.json"), $$$"""
            {"name":"every-second","source":{"folder":"docs"},"prompt":"Summarize:\n{text}\nSummary:","max_tokens":16,
             "schedule":"* * * * * *","output":{"folder":"out"},"chunking":{"chunk_tokens":64,"overlap_tokens":8},
             "webhook":{"url":"{{{receiver.Url}}}","secret":"{{{Secret}}}"}}
            """);
        File.WriteAllText(Path.Combine(pipelines, "broken.json"), """{"name":"broken"}"""); // logged and skipped

        var settings = new ServeSettings(0, [ModelChoice.Default], Path.Combine(_folder.Root, "data"), ["key-serve-pipelines"])
        {
            Engine = new EngineOptions { MaxSequenceLength = 192 },
            PipelinesPath = pipelines,
        };
        await using var app = ServeHost.Build(settings);
        await app.StartAsync();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (receiver.Requests.IsEmpty && DateTime.UtcNow < deadline) await Task.Delay(100);
        await app.StopAsync();

        var request = Assert.Single(receiver.Requests);
        var body = Encoding.UTF8.GetString(request.Body);
        Assert.Equal(WebhookVerifyResult.Valid,
            WebhookSigner.Verify(Secret, new WebhookHeaders(request.Id!, request.Timestamp!, request.Signature!), body, DateTimeOffset.UtcNow));
        var data = JsonDocument.Parse(body).RootElement.GetProperty("data");
        Assert.Equal(("every-second", 1, 1, 0), (data.GetProperty("pipeline").GetString(), data.GetProperty("num_documents").GetInt32(),
            data.GetProperty("num_summarized").GetInt32(), data.GetProperty("num_errors").GetInt32()));
        Assert.True(File.Exists(Path.Combine(pipelines, "out", "note.txt.summary.md")));
        Assert.True(File.Exists(Path.Combine(pipelines, "out", data.GetProperty("manifest").GetString()!)));
    }
}

using VicunaBatch.Core.Pipelines;

namespace VicunaBatch.Core.Tests.Pipelines;

public sealed class DocumentSummarizerTests
{
    private static DocumentSummarizer Summarizer(int chunkTokens)
    {
        var definition = PipelineDefinition.Parse(
            $$$"""{"name":"n","source":{"folder":"d"},"prompt":"{text}","max_tokens":2,"output":{"folder":"o"},"chunking":{"chunk_tokens":{{{chunkTokens}}},"overlap_tokens":1}}""");
        var parts = new PipelineParts(null!, null!, null!, null!, new CharTokenizer(), 64, null);
        return new DocumentSummarizer(definition, parts, "run", TimeProvider.System);
    }

    [Fact]
    public void Group_consecutivePiecesWhileTheyFitTheChunk()
    {
        var groups = Summarizer(chunkTokens: 8).Group(["abc", "de", "fgh", "ij", "k", "lmno"]);

        Assert.Equal(["abc|de|fgh", "ij|k|lmno"], groups.Select(g => string.Join('|', g)));
    }

    [Fact]
    public void Group_pieceOverHalfTheChunk_isCutSoEveryGroupHoldsTwo()
    {
        var groups = Summarizer(chunkTokens: 8).Group(["abcdefgh", "ijklmn", "op"]);

        Assert.Equal(["abcd|ijkl", "op"], groups.Select(g => string.Join('|', g)));
    }

    [Fact]
    public void PipelineRunEvent_completed_isAStandardWebhooksEventNamingTheManifest()
    {
        var definition = PipelineDefinition.Parse(
            """{"name":"n","source":{"folder":"d"},"prompt":"{text}","output":{"folder":"o","prefix":"s/"},"webhook":{"url":"https://h.example/p","secret":"whsec_AAAA"}}""");
        var at = DateTimeOffset.FromUnixTimeSeconds(1_796_000_000);
        var manifest = new RunManifest("n", "pl-n-1", at, at, 3, 2, 1, [], []);

        var delivery = PipelineRunEvent.For(definition, "pl-n-1", PipelineRunEvent.Completed, at, manifest, null);

        Assert.Equal(("pipeline.run.completed", "pl-n-1", "https://h.example/p"), (delivery.EventType, delivery.JobId, delivery.Url));
        Assert.Equal(
            $$$"""{"id":"{{{delivery.EventId}}}","object":"event","type":"pipeline.run.completed","created_at":1796000000,"data":{"pipeline":"n","run_id":"pl-n-1","num_documents":3,"num_summarized":2,"num_errors":1,"manifest":"s/_runs/pl-n-1/manifest.json","error":null}}""",
            delivery.Payload);
        Assert.Matches("^evt_[0-9a-f]{32}$", delivery.EventId);
        Assert.Equal("n", PipelineRunner.PipelineNameOf("pl-n-1"));
        Assert.Equal("my-notes", PipelineRunner.PipelineNameOf("pl-my-notes-20261201T020000000"));
        Assert.Null(PipelineRunner.PipelineNameOf("batch_123"));
    }
}

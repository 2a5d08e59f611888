using VicunaBatch.Core.Pipelines;

namespace VicunaBatch.Core.Tests.Pipelines;

public sealed class PipelineDefinitionTests
{
    private const string Minimal = """{"name":"notes","source":{"folder":"docs"},"prompt":"Summarize {title}: {text}","output":{"folder":"out"}}""";

    [Fact]
    public void Parse_minimal_fillsDefaults()
    {
        var d = PipelineDefinition.Parse(Minimal);

        Assert.Equal("notes", d.Name);
        Assert.Equal(new PipelineLocation("docs", null, ""), d.Source.Location);
        Assert.Equal([".txt", ".md", ".jsonl"], d.Source.FileTypes);
        Assert.Equal("text", d.Source.TextField);
        Assert.Same(d.Prompt, d.ReducePrompt);
        Assert.Equal((256, 0f, 1L << 20), (d.MaxTokens, d.Temperature, d.MaxDocumentBytes));
        Assert.Equal(new ChunkingOptions(1024, 64), d.Chunking);
        Assert.Null(d.Schedule);
        Assert.Null(d.Webhook);
    }

    [Fact]
    public void Parse_everyField_readsEachOne()
    {
        var d = PipelineDefinition.Parse("""
            {"name":"nightly-2","source":{"container":"inbox","prefix":"notes/","file_types":[".MD",".jsonl"],"text_field":"body"},
             "prompt":"S: {text}","reduce_prompt":"R: {text} of {path}","max_tokens":16,"temperature":0.5,"schedule":"0 30 2 * * *",
             "output":{"container":"summaries","prefix":"out/"},"webhook":{"url":"https://hooks.example.com/p","secret":"whsec_AAAA"},
             "max_document_bytes":1000,"chunking":{"chunk_tokens":64,"overlap_tokens":8}}
            """);

        Assert.Equal(new PipelineLocation(null, "inbox", "notes/"), d.Source.Location);
        Assert.Equal([".md", ".jsonl"], d.Source.FileTypes);
        Assert.Equal("body", d.Source.TextField);
        Assert.Equal("R: x of p", d.ReducePrompt.Render("x", "t", "p"));
        Assert.Equal((16, 0.5f, 1000L), (d.MaxTokens, d.Temperature, d.MaxDocumentBytes));
        Assert.Equal("0 30 2 * * *", d.Schedule!.Expression);
        Assert.True(d.Schedule.HasSeconds);
        Assert.Equal(new PipelineLocation(null, "summaries", "out/"), d.Output);
        Assert.Equal(new PipelineWebhook("https://hooks.example.com/p", "whsec_AAAA"), d.Webhook);
        Assert.Equal(new ChunkingOptions(64, 8), d.Chunking);
    }

    [Theory]
    [InlineData("[1]", "", "the definition must be a JSON object")]
    [InlineData("""{"source":{"folder":"d"},"prompt":"{text}","output":{"folder":"o"}}""", "name", "is required")]
    [InlineData("""{"name":"Bad Name","source":{"folder":"d"},"prompt":"{text}","output":{"folder":"o"}}""", "name",
        "\"Bad Name\" must be 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit")]
    [InlineData("""{"name":"n","source":{"folder":"d"},"prompt":"{text}","output":{"folder":"o"},"colour":1}""", "colour",
        "unknown field (known: name, source, prompt, reduce_prompt, max_tokens, temperature, schedule, output, webhook, max_document_bytes, chunking)")]
    [InlineData("""{"name":"n","source":{},"prompt":"{text}","output":{"folder":"o"}}""", "source",
        "needs exactly one of \"folder\" (a local path) or \"container\" (a blob container)")]
    [InlineData("""{"name":"n","source":{"folder":"d","container":"abc"},"prompt":"{text}","output":{"folder":"o"}}""", "source",
        "needs exactly one of \"folder\" (a local path) or \"container\" (a blob container)")]
    [InlineData("""{"name":"n","source":{"container":"A_B"},"prompt":"{text}","output":{"folder":"o"}}""", "source.container",
        "\"A_B\" is not a container name (3-63 of a-z, 0-9, '-')")]
    [InlineData("""{"name":"n","source":{"folder":"d","prefix":"../x"},"prompt":"{text}","output":{"folder":"o"}}""", "source.prefix",
        "\"../x\" must be a relative blob name prefix ('/' separators, no '..')")]
    [InlineData("""{"name":"n","source":{"folder":"d","file_types":[".pdf"]},"prompt":"{text}","output":{"folder":"o"}}""", "source.file_types",
        "\".pdf\" is not one of .txt, .md, .jsonl")]
    [InlineData("""{"name":"n","source":{"folder":"d","file_types":[]},"prompt":"{text}","output":{"folder":"o"}}""", "source.file_types",
        "must name at least one file type")]
    [InlineData("""{"name":"n","source":{"folder":"d"},"prompt":"{text} {author}","output":{"folder":"o"}}""", "prompt",
        "unknown placeholder {author} (known: {text}, {title}, {path})")]
    [InlineData("""{"name":"n","source":{"folder":"d"},"prompt":"{title}","output":{"folder":"o"}}""", "prompt",
        "must contain {text}, where the document (or the summaries to combine) goes")]
    [InlineData("""{"name":"n","source":{"folder":"d"},"prompt":"{text}","reduce_prompt":"{text","output":{"folder":"o"}}""", "reduce_prompt",
        "unclosed '{' at character 1 (write {{ for a literal brace)")]
    [InlineData("""{"name":"n","source":{"folder":"d"},"prompt":"{text}","max_tokens":0,"output":{"folder":"o"}}""", "max_tokens",
        "0 must be an integer >= 1")]
    [InlineData("""{"name":"n","source":{"folder":"d"},"prompt":"{text}","max_tokens":"9","output":{"folder":"o"}}""", "max_tokens",
        "must be a JSON number, not string")]
    [InlineData("""{"name":"n","source":{"folder":"d"},"prompt":"{text}","temperature":3,"output":{"folder":"o"}}""", "temperature",
        "3 must be between 0 and 2")]
    [InlineData("""{"name":"n","source":{"folder":"d"},"prompt":"{text}","output":{"folder":"o"},"max_document_bytes":-1}""", "max_document_bytes",
        "-1 must be a positive integer")]
    [InlineData("""{"name":"n","source":{"folder":"d"},"prompt":"{text}","output":{"folder":"o"},"chunking":{"chunk_tokens":64,"overlap_tokens":64}}""",
        "chunking.overlap_tokens", "64 must be less than chunking.chunk_tokens (64)")]
    [InlineData("""{"name":"n","source":{"folder":"d"},"prompt":"{text}","max_tokens":40,"output":{"folder":"o"},"chunking":{"chunk_tokens":64}}""",
        "max_tokens", "40 must be at most half of chunking.chunk_tokens (64) so two summaries fit one reduce request")]
    [InlineData("""{"name":"n","source":{"folder":"d"},"prompt":"{text}","output":{"folder":"o"},"webhook":{"url":"ftp://x/y","secret":"whsec_AAAA"}}""",
        "webhook.url", "\"ftp://x/y\" is not an absolute http(s) URL")]
    [InlineData("""{"name":"n","source":{"folder":"d"},"prompt":"{text}","output":{"folder":"o"},"webhook":{"url":"https://x/y","secret":"whsec_***"}}""",
        "webhook.secret", "must be \"whsec_\" followed by base64 key bytes")]
    [InlineData("""{"name":"n","source":{"folder":"d"},"prompt":"{text}","output":{"folder":"o"},"schedule":"61 * * * *"}""", "schedule",
        "\"61 * * * *\" is not a valid cron expression: The given cron expression has an invalid format. Minutes: Value must be a number between 0 and 59 (all inclusive).")]
    public void Parse_badField_namesTheFieldAndReason(string json, string field, string reason)
    {
        var e = Assert.Throws<PipelineDefinitionException>(() => PipelineDefinition.Parse(json));

        Assert.Equal(field, e.Field);
        Assert.Equal(reason, e.Reason);
        Assert.Equal(field.Length > 0 ? $"{field}: {reason}" : reason, e.Message);
    }

    [Fact]
    public void Parse_notJson_saysSo()
    {
        var e = Assert.Throws<PipelineDefinitionException>(() => PipelineDefinition.Parse("{"));
        Assert.Equal("", e.Field);
        Assert.StartsWith("not JSON: ", e.Reason);
    }
}

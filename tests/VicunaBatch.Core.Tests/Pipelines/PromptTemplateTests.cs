using VicunaBatch.Core.Pipelines;

namespace VicunaBatch.Core.Tests.Pipelines;

public sealed class PromptTemplateTests
{
    [Fact]
    public void Render_replacesEveryPlaceholderAndUnescapesBraces()
    {
        var template = PromptTemplate.Parse("{{json}} {title} ({path}):\n{text}\n{text}}}");

        Assert.Equal("{json} T (a/b.md):\nX\nX}", template.Render("X", "T", "a/b.md"));
    }

    [Theory]
    [InlineData("{text} }", "unmatched '}' at character 8 (write }} for a literal brace)")]
    [InlineData("{Text}", "unknown placeholder {Text} (known: {text}, {title}, {path})")]
    [InlineData("{}", "unknown placeholder {} (known: {text}, {title}, {path})")]
    [InlineData("no text here", "must contain {text}, where the document (or the summaries to combine) goes")]
    public void Parse_badTemplate_rejected(string template, string reason)
    {
        var e = Assert.Throws<PipelineDefinitionException>(() => PromptTemplate.Parse(template));

        Assert.Equal(("prompt", reason), (e.Field, e.Reason));
    }
}

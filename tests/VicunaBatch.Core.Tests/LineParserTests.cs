using System.Text;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Tests;

public class LineParserTests
{
    private readonly LineParser _parser = new(new InputOptions { MaxCustomIdLength = 10 });

    private ParsedLine Parse(string text, int lineNumber = 7, InputFormat format = InputFormat.Jsonl) =>
        _parser.Parse(new InputLine(lineNumber, 0, text.Length + 1, Encoding.UTF8.GetBytes(text)), format);

    [Fact]
    public void Parse_openAiChatLine_readsEveryField()
    {
        var parsed = Parse("""{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"vicuna","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"max_tokens":16,"temperature":0.5,"top_p":0.9,"seed":42,"stop":"\n"}}""");

        Assert.Null(parsed.Error);
        Assert.Equal(new BatchRequest
        {
            CustomId = "a", LineNumber = 7, Endpoint = BatchEndpoint.ChatCompletions, Model = "vicuna",
            Messages = [new ChatTurn("system", "Be brief."), new ChatTurn("user", "Hi")],
            MaxTokens = 16, Temperature = 0.5, TopP = 0.9, Seed = 42, Stop = ["\n"],
        }, parsed.Request);
    }

    [Fact]
    public void Parse_openAiCompletionLine_readsPromptAndStopArray()
    {
        var parsed = Parse("""{"custom_id":"b","method":"POST","url":"/v1/completions","body":{"prompt":"Once","stop":["a","b"]}}""");

        Assert.Equal(new BatchRequest
        {
            CustomId = "b", LineNumber = 7, Endpoint = BatchEndpoint.Completions, Prompt = "Once", Stop = ["a", "b"],
        }, parsed.Request);
    }

    [Fact]
    public void Parse_simplePromptWithoutCustomId_isCompletionNamedAfterLine()
    {
        var parsed = Parse("""{"prompt":"Hello","max_tokens":3}""", lineNumber: 12);

        Assert.Equal(new BatchRequest
        {
            CustomId = "line-12", LineNumber = 12, Endpoint = BatchEndpoint.Completions, Prompt = "Hello", MaxTokens = 3,
        }, parsed.Request);
    }

    [Fact]
    public void Parse_simpleMessages_isChat()
    {
        var parsed = Parse("""{"custom_id":"c","messages":[{"role":"user","content":"Hi"}],"temperature":0}""");

        Assert.Equal(new BatchRequest
        {
            CustomId = "c", LineNumber = 7, Endpoint = BatchEndpoint.ChatCompletions,
            Messages = [new ChatTurn("user", "Hi")], Temperature = 0,
        }, parsed.Request);
    }

    [Fact]
    public void Parse_textLine_isPromptNamedAfterLine()
    {
        var parsed = Parse("Summarize {this}", lineNumber: 3, format: InputFormat.Text);

        Assert.Equal(new BatchRequest
        {
            CustomId = "line-3", LineNumber = 3, Endpoint = BatchEndpoint.Completions, Prompt = "Summarize {this}",
        }, parsed.Request);
    }

    [Theory]
    [InlineData("""{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"temperature":1.25,"top_p":0.5,"seed":-3,"stop":["x","y"]}}""")]
    [InlineData("""{"custom_id":"b","prompt":"é \"quoted\" \u2028 <tag>","seed":9007199254740993}""")]
    [InlineData("""{"messages":[{"role":"system","content":""},{"role":"assistant","content":"ok"},{"role":"user","content":"go"}],"model":"m"}""")]
    public void Parse_serializeParse_givesEqualRequest(string line)
    {
        var first = Parse(line).Request!;

        var second = Parse(BatchLineWriter.ToOpenAiLine(first)).Request;

        Assert.Equal(first, second);
    }

    [Theory]
    [InlineData("{not json", LineErrorCode.InvalidJson)]
    [InlineData("[1,2]", LineErrorCode.NotAnObject)]
    [InlineData("\"text\"", LineErrorCode.NotAnObject)]
    [InlineData("""{"custom_id":"a"}""", LineErrorCode.MissingPrompt)]
    [InlineData("""{"prompt":"a","messages":[{"role":"user","content":"b"}]}""", LineErrorCode.AmbiguousPrompt)]
    [InlineData("""{"method":"POST","url":"/v1/embeddings","body":{"prompt":"a"}}""", LineErrorCode.UnknownEndpoint)]
    [InlineData("""{"method":"POST","body":{"prompt":"a"}}""", LineErrorCode.UnknownEndpoint)]
    [InlineData("""{"method":"GET","url":"/v1/completions","body":{"prompt":"a"}}""", LineErrorCode.InvalidMethod)]
    [InlineData("""{"method":"POST","url":"/v1/completions"}""", LineErrorCode.MissingBody)]
    [InlineData("""{"method":"POST","url":"/v1/completions","body":"a"}""", LineErrorCode.InvalidType)]
    [InlineData("""{"method":"POST","url":"/v1/chat/completions","body":{"prompt":"a"}}""", LineErrorCode.MissingPrompt)]
    [InlineData("""{"method":"POST","url":"/v1/completions","body":{"prompt":"a","messages":[]}}""", LineErrorCode.AmbiguousPrompt)]
    [InlineData("""{"prompt":5}""", LineErrorCode.InvalidType)]
    [InlineData("""{"prompt":""}""", LineErrorCode.InvalidParameter)]
    [InlineData("""{"prompt":"a","max_tokens":"5"}""", LineErrorCode.InvalidType)]
    [InlineData("""{"prompt":"a","max_tokens":2.5}""", LineErrorCode.InvalidType)]
    [InlineData("""{"prompt":"a","max_tokens":0}""", LineErrorCode.InvalidParameter)]
    [InlineData("""{"prompt":"a","temperature":2.01}""", LineErrorCode.InvalidParameter)]
    [InlineData("""{"prompt":"a","temperature":-0.1}""", LineErrorCode.InvalidParameter)]
    [InlineData("""{"prompt":"a","temperature":"hot"}""", LineErrorCode.InvalidType)]
    [InlineData("""{"prompt":"a","top_p":0}""", LineErrorCode.InvalidParameter)]
    [InlineData("""{"prompt":"a","top_p":1.5}""", LineErrorCode.InvalidParameter)]
    [InlineData("""{"prompt":"a","seed":1.5}""", LineErrorCode.InvalidType)]
    [InlineData("""{"prompt":"a","stop":[1]}""", LineErrorCode.InvalidType)]
    [InlineData("""{"prompt":"a","stop":""}""", LineErrorCode.InvalidParameter)]
    [InlineData("""{"messages":[]}""", LineErrorCode.InvalidMessages)]
    [InlineData("""{"messages":"hi"}""", LineErrorCode.InvalidType)]
    [InlineData("""{"messages":[{"role":"robot","content":"hi"}]}""", LineErrorCode.InvalidMessages)]
    [InlineData("""{"messages":[{"role":"user"}]}""", LineErrorCode.InvalidMessages)]
    [InlineData("""{"messages":["hi"]}""", LineErrorCode.InvalidMessages)]
    [InlineData("""{"prompt":"a","n":2}""", LineErrorCode.UnknownField)]
    [InlineData("""{"custom_id":"12345678901","prompt":"a"}""", LineErrorCode.InvalidCustomId)]
    [InlineData("""{"custom_id":"","prompt":"a"}""", LineErrorCode.InvalidCustomId)]
    [InlineData("""{"custom_id":5,"prompt":"a"}""", LineErrorCode.InvalidCustomId)]
    public void Parse_badLine_givesCodeAndLineNumber(string line, LineErrorCode expected)
    {
        var parsed = Parse(line, lineNumber: 9);

        Assert.Null(parsed.Request);
        Assert.Equal(expected, parsed.Error!.Code);
        Assert.Equal(9, parsed.Error.LineNumber);
        Assert.False(string.IsNullOrWhiteSpace(parsed.Error.Message));
    }

    [Fact]
    public void Parse_badLineWithCustomId_keepsCustomIdAndNamesField()
    {
        var parsed = Parse("""{"custom_id":"x1","prompt":"a","top_p":2}""", lineNumber: 4);

        Assert.Equal(new LineError(4, "x1", LineErrorCode.InvalidParameter, "top_p must be in (0, 1], got 2", "top_p"), parsed.Error);
    }

    [Fact]
    public void Parse_invalidUtf8TextLine_isInvalidEncoding()
    {
        var parsed = _parser.Parse(new InputLine(2, 0, 3, [0x61, 0xC3]), InputFormat.Text);

        Assert.Equal(LineErrorCode.InvalidEncoding, parsed.Error!.Code);
    }

    [Fact]
    public void Parse_invalidUtf8InsideAJsonString_isInvalidEncodingNotACrash()
    {
        byte[] line = [.. "{\"custom_id\":\"u2\",\"prompt\":\"bad "u8, 0xFF, 0xFE, .. "\"}"u8];

        var parsed = _parser.Parse(new InputLine(7, 0, line.Length, line), InputFormat.Jsonl);

        Assert.Equal(new LineError(7, "line-7", LineErrorCode.InvalidEncoding, "line is not valid UTF-8"), parsed.Error);
    }

    [Fact]
    public void SnakeCase_errorCodes_areOpenAiStyle()
    {
        Assert.Equal("duplicate_custom_id", LineErrorCode.DuplicateCustomId.SnakeCase());
        Assert.Equal("invalid_json", LineErrorCode.InvalidJson.SnakeCase());
        Assert.Equal("unknown_endpoint", LineErrorCode.UnknownEndpoint.SnakeCase());
    }
}

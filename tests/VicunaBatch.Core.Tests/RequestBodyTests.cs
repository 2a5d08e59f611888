using System.Text;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Tests;

/// <summary>The OpenAI request bodies beyond one string prompt: content parts, roles, prompt forms, n, logprobs, and
/// the parameters refused per line rather than ignored.</summary>
public class RequestBodyTests
{
    private readonly LineParser _parser = new(new InputOptions());

    private ParsedLine Parse(string url, string body) =>
        _parser.Parse(new InputLine(3, 0, 1, Encoding.UTF8.GetBytes($$"""{"custom_id":"r","method":"POST","url":"{{url}}","body":{{body}}}""")), InputFormat.Jsonl);

    private BatchRequest Chat(string body) => Parse("/v1/chat/completions", body).Request ?? throw new Xunit.Sdk.XunitException(Parse("/v1/chat/completions", body).Error!.Message);

    private BatchRequest Completion(string body) => Parse("/v1/completions", body).Request ?? throw new Xunit.Sdk.XunitException(Parse("/v1/completions", body).Error!.Message);

    private LineError Refused(string url, string body) => Parse(url, body).Error ?? throw new Xunit.Sdk.XunitException("the line parsed");

    [Fact]
    public void Parse_contentAsTextParts_joinsTheirText()
    {
        var request = Chat("""{"messages":[{"role":"user","content":[{"type":"text","text":"Hello, "},{"type":"text","text":"world"}]}]}""");

        Assert.Equal([new ChatTurn("user", "Hello, world")], request.Messages);
    }

    [Theory]
    [InlineData("""{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}""", "image_url")]
    [InlineData("""{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}""", "input_audio")]
    [InlineData("""{"type":"file","file":{"file_id":"file-1"}}""", "file")]
    public void Parse_nonTextContentPart_isUnsupportedParameterNamingThePart(string part, string type)
    {
        var error = Refused("/v1/chat/completions", $$"""{"messages":[{"role":"user","content":[{"type":"text","text":"look"},{{part}}]}]}""");

        Assert.Equal(LineErrorCode.UnsupportedParameter, error.Code);
        Assert.Equal("messages[0].content[1].type", error.Param);
        Assert.Contains(type, error.Message);
        Assert.Equal("r", error.CustomId);
    }

    [Fact]
    public void Parse_developerRole_isKeptForThePromptToReadAsSystem()
    {
        var request = Chat("""{"messages":[{"role":"developer","content":"Be brief."},{"role":"user","content":"Hi"}]}""");

        Assert.Equal([new ChatTurn("developer", "Be brief."), new ChatTurn("user", "Hi")], request.Messages);
    }

    [Theory]
    [InlineData("""[{"role":"user","content":"Hi"},{"role":"tool","tool_call_id":"c1","content":"42"}]""", "messages[1].role")]
    [InlineData("""[{"role":"user","content":"Hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}]""", "messages[1].tool_calls")]
    public void Parse_toolMessages_areUnsupportedParameter(string messages, string param)
    {
        var error = Refused("/v1/chat/completions", $$"""{"messages":{{messages}}}""");

        Assert.Equal(LineErrorCode.UnsupportedParameter, error.Code);
        Assert.Equal(param, error.Param);
    }

    [Fact]
    public void Parse_promptForms_readAsTextIdsOrSeveralPrompts()
    {
        Assert.Equal(new CompletionPrompt("Once", null), Completion("""{"prompt":"Once"}""").CompletionPrompts().Single());
        Assert.Equal(new CompletionPrompt(null, [1, 403, 407]), Completion("""{"prompt":[1,403,407]}""").CompletionPrompts().Single());
        Assert.Equal([new CompletionPrompt("a", null), new CompletionPrompt("b", null)], Completion("""{"prompt":["a","b"]}""").CompletionPrompts());
        Assert.Equal([new CompletionPrompt(null, [1, 2]), new CompletionPrompt(null, [3])], Completion("""{"prompt":[[1,2],[3]]}""").CompletionPrompts());
    }

    [Theory]
    [InlineData("""{"prompt":[]}""", LineErrorCode.InvalidParameter)]
    [InlineData("""{"prompt":["a",""]}""", LineErrorCode.InvalidParameter)]
    [InlineData("""{"prompt":[1,-2]}""", LineErrorCode.InvalidParameter)]
    [InlineData("""{"prompt":[1,"a"]}""", LineErrorCode.InvalidType)]
    [InlineData("""{"prompt":[[1],"a"]}""", LineErrorCode.InvalidType)]
    [InlineData("""{"prompt":[[]]}""", LineErrorCode.InvalidParameter)]
    [InlineData("""{"prompt":{"text":"a"}}""", LineErrorCode.InvalidType)]
    public void Parse_badPrompt_isRefusedWithParamPrompt(string body, LineErrorCode code)
    {
        var error = Refused("/v1/completions", body);

        Assert.Equal(code, error.Code);
        Assert.Equal("prompt", error.Param);
    }

    [Fact]
    public void Parse_nAndLogprobs_areRead()
    {
        const string hi = "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]";
        var both = Chat($$"""{{{hi}},"n":3,"logprobs":true,"top_logprobs":5}""");
        var noTop = Chat($$"""{{{hi}},"logprobs":true}""");
        var off = Chat($$"""{{{hi}},"logprobs":false,"n":1}""");
        var completion = Completion("""{"prompt":"a","n":2,"best_of":2,"logprobs":3}""");

        Assert.Equal((3, 5), (both.N, both.Logprobs));
        Assert.Equal((1, 0), (noTop.N, noTop.Logprobs));
        Assert.Equal((1, null), (off.N, off.Logprobs));
        Assert.Equal((2, 3), (completion.N, completion.Logprobs));
    }

    [Theory]
    [InlineData("/v1/chat/completions", """{"messages":[{"role":"user","content":"Hi"}],"n":0}""", LineErrorCode.InvalidParameter, "n")]
    [InlineData("/v1/chat/completions", """{"messages":[{"role":"user","content":"Hi"}],"n":129}""", LineErrorCode.InvalidParameter, "n")]
    [InlineData("/v1/completions", """{"prompt":["a","b","c"],"n":50}""", LineErrorCode.InvalidParameter, "n")]
    [InlineData("/v1/chat/completions", """{"messages":[{"role":"user","content":"Hi"}],"top_logprobs":2}""", LineErrorCode.InvalidParameter, "top_logprobs")]
    [InlineData("/v1/chat/completions", """{"messages":[{"role":"user","content":"Hi"}],"logprobs":true,"top_logprobs":21}""", LineErrorCode.InvalidParameter, "top_logprobs")]
    [InlineData("/v1/chat/completions", """{"messages":[{"role":"user","content":"Hi"}],"logprobs":1}""", LineErrorCode.InvalidType, "logprobs")]
    [InlineData("/v1/completions", """{"prompt":"a","logprobs":6}""", LineErrorCode.InvalidParameter, "logprobs")]
    [InlineData("/v1/completions", """{"prompt":"a","best_of":3}""", LineErrorCode.UnsupportedParameter, "best_of")]
    [InlineData("/v1/completions", """{"prompt":"a","n":2,"best_of":1}""", LineErrorCode.UnsupportedParameter, "best_of")]
    public void Parse_choiceParametersOutOfRange_areRefused(string url, string body, LineErrorCode code, string param)
    {
        var error = Refused(url, body);

        Assert.Equal(code, error.Code);
        Assert.Equal(param, error.Param);
    }

    [Theory]
    [InlineData("/v1/chat/completions", "tools", """[{"type":"function","function":{"name":"f"}}]""")]
    [InlineData("/v1/chat/completions", "tool_choice", "\"auto\"")]
    [InlineData("/v1/chat/completions", "functions", """[{"name":"f"}]""")]
    [InlineData("/v1/chat/completions", "audio", """{"voice":"alloy","format":"wav"}""")]
    [InlineData("/v1/chat/completions", "modalities", """["text","audio"]""")]
    [InlineData("/v1/chat/completions", "prediction", """{"type":"content","content":"x"}""")]
    [InlineData("/v1/chat/completions", "presence_penalty", "0.5")]
    [InlineData("/v1/chat/completions", "logit_bias", """{"50256":-100}""")]
    [InlineData("/v1/completions", "echo", "true")]
    [InlineData("/v1/completions", "suffix", "\"end\"")]
    public void Parse_unsupportedParameter_isAnErrorLineNamingIt(string url, string name, string value)
    {
        var start = url == "/v1/completions" ? "\"prompt\":\"a\"" : "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]";

        var error = Refused(url, $$"""{{{start}},"{{name}}":{{value}}}""");

        Assert.Equal(LineErrorCode.UnsupportedParameter, error.Code);
        Assert.Equal(name, error.Param);
        Assert.Contains("not supported", error.Message);
    }

    [Theory]
    [InlineData("auto")]
    [InlineData("flex")]
    [InlineData("priority")]
    public void Parse_parametersThatChangeNoAnswer_areAccepted(string tier)
    {
        var request = Chat($$$"""{"messages":[{"role":"user","content":"Hi"}],"user":"u1","store":false,"metadata":{"k":"v"},"service_tier":"{{{tier}}}","stream":false,"n":1,"modalities":["text"],"response_format":{"type":"json_object"}}""");

        Assert.Equal("Hi", request.Messages[0].Content);
    }

    [Fact]
    public void Parse_unknownBodyParameter_isUnknownField()
    {
        var error = Refused("/v1/chat/completions", """{"messages":[{"role":"user","content":"Hi"}],"temprature":0.5}""");

        Assert.Equal(LineErrorCode.UnknownField, error.Code);
        Assert.Equal("temprature", error.Param);
    }

    [Fact]
    public void ToOpenAiLine_newFields_parseBackToTheSameRequest()
    {
        var chat = Chat("""{"messages":[{"role":"developer","content":"x"},{"role":"user","content":"Hi"}],"n":2,"logprobs":true,"top_logprobs":3}""");
        var completion = Completion("""{"prompt":[[1,2],[3]],"n":2,"logprobs":1}""");

        foreach (var request in new[] { chat, completion })
        {
            var line = BatchLineWriter.ToOpenAiLine(request);
            var back = _parser.Parse(new InputLine(3, 0, 1, Encoding.UTF8.GetBytes(line)), InputFormat.Jsonl);
            Assert.Equal(request, back.Request);
        }
    }

    [Fact]
    public void Parse_simpleLineWithTokenIdPrompt_isInvalidTypeAsBefore()
    {
        var error = _parser.Parse(new InputLine(2, 0, 1, Encoding.UTF8.GetBytes("""{"prompt":[1],"max_tokens":2}""")), InputFormat.Jsonl).Error!;

        Assert.Equal((LineErrorCode.InvalidType, "prompt"), (error.Code, error.Param));
    }
}

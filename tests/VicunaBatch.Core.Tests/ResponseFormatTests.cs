using System.Text;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Tests;

/// <summary><c>response_format</c> on input lines: the three types, the schema subset, and a clear line error for the rest.</summary>
public class ResponseFormatTests
{
    private readonly LineParser _parser = new(new InputOptions());

    private ParsedLine Parse(string body) =>
        ParseLine("""{"custom_id":"r","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"Hi"}],"response_format":""" + body + "}}");

    private ParsedLine ParseLine(string line, int lineNumber = 3) =>
        _parser.Parse(new InputLine(lineNumber, 0, line.Length + 1, Encoding.UTF8.GetBytes(line)), InputFormat.Jsonl);

    private ResponseFormat? FormatOf(string body)
    {
        var parsed = Parse(body);
        Assert.True(parsed.Error is null, parsed.Error?.Message);
        return parsed.Request!.ResponseFormat;
    }

    private LineError ErrorOf(string body) => Parse(body).Error ?? throw new Xunit.Sdk.XunitException($"{body} was accepted");

    [Fact]
    public void Parse_textAndJsonObject_readTheirKind()
    {
        Assert.Equal(ResponseFormatKind.Text, FormatOf("""{"type":"text"}""")!.Kind);
        Assert.Equal(ResponseFormatKind.JsonObject, FormatOf("""{"type":"json_object"}""")!.Kind);
        Assert.Null(ParseLine("""{"custom_id":"r","messages":[{"role":"user","content":"Hi"}]}""").Request!.ResponseFormat);
    }

    [Fact]
    public void Parse_jsonSchema_readsTheSubsetNodeForNode()
    {
        var format = FormatOf("""
            {"type":"json_schema","json_schema":{"name":"person","strict":true,"description":"d","schema":{
              "type":"object","title":"P","additionalProperties":false,"required":["name","kind"],
              "properties":{"name":{"type":"string"},"age":{"type":["integer","null"]},"kind":{"enum":["a", 1, {"x" : [true]}]},
                "tags":{"type":"array","items":{"type":"number"}},"v":{"const":"é<"},"any":{},"u":{"anyOf":[{"type":"boolean"},{"type":"null"}]},
                "open":{"type":"object"}}}}}
            """)!;
        Assert.Equal(ResponseFormatKind.JsonSchema, format.Kind);
        Assert.Equal("person", format.Name);
        var root = Assert.IsType<ResponseSchema.Object>(format.Schema);
        Assert.Null(root.Additional);
        Assert.Equal(["name", "kind"], root.Required);
        var properties = root.Properties.ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal(new ResponseSchema.String(), properties["name"]);
        Assert.Equal(["a", "1", "{\"x\":[true]}"], Assert.IsType<ResponseSchema.Literal>(properties["kind"]).Texts.Select(t => t.Trim('"')));
        Assert.Equal([new ResponseSchema.Number(true), new ResponseSchema.Null()], Assert.IsType<ResponseSchema.AnyOf>(properties["age"]).Options);
        Assert.Equal(new ResponseSchema.Number(false), Assert.IsType<ResponseSchema.Array>(properties["tags"]).Items);
        Assert.Equal(["\"é<\""], Assert.IsType<ResponseSchema.Literal>(properties["v"]).Texts);
        Assert.Equal(new ResponseSchema.Any(), properties["any"]);
        Assert.Equal([new ResponseSchema.Boolean(), new ResponseSchema.Null()], Assert.IsType<ResponseSchema.AnyOf>(properties["u"]).Options);
        var open = Assert.IsType<ResponseSchema.Object>(properties["open"]);
        Assert.Equal(new ResponseSchema.Any(), open.Additional);
    }

    [Theory]
    [InlineData("""{"type":"string","minLength":3}""", "\"minLength\"")]
    [InlineData("""{"type":"object","properties":{"a":{"$ref":"#/$defs/x"}}}""", "schema.properties.a: the keyword \"$ref\"")]
    [InlineData("""{"type":"array","items":{"type":"string","pattern":"^a"}}""", "schema.items: the keyword \"pattern\"")]
    [InlineData("""{"oneOf":[{"type":"string"}]}""", "\"oneOf\"")]
    [InlineData("""{"type":"object","properties":{"a":{"type":"string"}},"required":["b"]}""", "required property \"b\"")]
    [InlineData("""{"type":"string","anyOf":[{"type":"string"}]}""", "\"anyOf\" beside other keywords")]
    [InlineData("""{"type":"date"}""", "\"type\" must be one of")]
    [InlineData("""{"type":"string","properties":{}}""", "\"properties\" applies to type \"object\"")]
    [InlineData("""{"type":"integer","enum":["a"]}""", "no value of \"enum\"")]
    public void Parse_schemaOutsideTheSubset_isAnUnsupportedParameterLineNamingTheKeyword(string schema, string expected)
    {
        var error = ErrorOf("""{"type":"json_schema","json_schema":{"name":"s","schema":""" + schema + "}}");
        Assert.Equal(LineErrorCode.UnsupportedParameter, error.Code);
        Assert.Equal("r", error.CustomId);
        Assert.Contains(expected, error.Message);
        Assert.StartsWith("response_format.json_schema.schema", error.Message);
    }

    [Theory]
    [InlineData("\"json\"", LineErrorCode.InvalidType, "response_format must be an object")]
    [InlineData("""{"type":"yaml"}""", LineErrorCode.InvalidParameter, "response_format.type must be")]
    [InlineData("""{"type":"json_schema"}""", LineErrorCode.InvalidParameter, "json_schema must be an object")]
    [InlineData("""{"type":"json_schema","json_schema":{"schema":{}}}""", LineErrorCode.InvalidParameter, "name must be a string")]
    [InlineData("""{"type":"json_schema","json_schema":{"name":"s","strict":"yes"}}""", LineErrorCode.InvalidType, "strict must be a boolean")]
    [InlineData("""{"type":"json_schema","json_schema":{"name":"s","format":"x"}}""", LineErrorCode.UnsupportedParameter, "json_schema.format is not supported")]
    public void Parse_malformedResponseFormat_isALineError(string body, LineErrorCode code, string expected)
    {
        var error = ErrorOf(body);
        Assert.Equal(code, error.Code);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Parse_jsonObjectOnACompletionLine_isUnsupported()
    {
        var error = ParseLine("""{"custom_id":"c","prompt":"Hi","response_format":{"type":"json_object"}}""").Error!;
        Assert.Equal(LineErrorCode.UnsupportedParameter, error.Code);
        Assert.Contains("/v1/chat/completions lines only", error.Message);
    }

    [Fact]
    public void Parse_simpleLineWithResponseFormat_readsIt() =>
        Assert.Equal(ResponseFormatKind.JsonObject,
            ParseLine("""{"messages":[{"role":"user","content":"Hi"}],"response_format":{"type":"json_object"}}""").Request!.ResponseFormat!.Kind);

    [Fact]
    public void Requests_withTheSameSchemaText_areEqual()
    {
        const string body = """{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"array","items":{"type":"string"}}}}""";
        Assert.Equal(Parse(body).Request, Parse(body).Request);
        Assert.NotEqual(Parse(body).Request, Parse("""{"type":"json_object"}""").Request);
    }
}

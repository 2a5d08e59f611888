using System.Text.Json;

namespace VicunaBatch.Api.Tests;

/// <summary>
/// Issue 23's request bodies through <c>serve</c>: <c>sdk/bodies.mjs</c> runs content parts, the developer role, n,
/// logprobs, prompt arrays and token ids through the OpenAI Node SDK's own batch flow; what stays unsupported is an error
/// line per refused line, naming its code and param, while the file's other lines run (and the validation report over
/// HTTP names them before a batch is made).
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class RequestBodySdkTests(ServerFixture server)
{
    private static string Line(string id, string url, string body) =>
        $$"""{"custom_id":"{{id}}","method":"POST","url":"{{url}}","body":{{body}}}""" + "\n";

    private static readonly string ChatInput = string.Concat(
        Line("parts", "/v1/chat/completions", """{"messages":[{"role":"user","content":[{"type":"text","text":"Tell me "},{"type":"text","text":"a story"}]}],"max_tokens":4,"n":2,"temperature":1,"seed":5,"logprobs":true,"top_logprobs":2}"""),
        Line("developer", "/v1/chat/completions", """{"messages":[{"role":"developer","content":"Be brief."},{"role":"user","content":"Hi"}],"max_tokens":4,"user":"u-1","store":false}"""));

    private static readonly string CompletionsInput = string.Concat(
        Line("prompts", "/v1/completions", """{"prompt":["Once upon","The dog"],"max_tokens":3,"n":2,"logprobs":1}"""),
        Line("ids", "/v1/completions", """{"prompt":[1,374,336],"max_tokens":3}"""));

    private static readonly (string Id, string Body, string Code, string Param)[] Refusals =
    [
        ("image", """{"messages":[{"role":"user","content":[{"type":"text","text":"see"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}""", "unsupported_parameter", "messages[0].content[1].type"),
        ("tool", """{"messages":[{"role":"user","content":"Hi"},{"role":"tool","tool_call_id":"c1","content":"42"}]}""", "unsupported_parameter", "messages[1].role"),
        ("tools", """{"messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}""", "unsupported_parameter", "tools"),
        ("penalty", """{"messages":[{"role":"user","content":"Hi"}],"presence_penalty":1}""", "unsupported_parameter", "presence_penalty"),
        ("top", """{"messages":[{"role":"user","content":"Hi"}],"logprobs":true,"top_logprobs":21}""", "invalid_parameter", "top_logprobs"),
    ];

    [Fact]
    public async Task OpenAiNodeSdk_requestBodies_runWithTheirChoicesAndLogprobs()
    {
        await SdkClientTests.EnsureSdkAsync();
        var results = await RunBodiesAsync();

        var chat = results[0];
        Assert.Equal("completed", chat.GetProperty("status").GetString());
        var parts = chat.GetProperty("outputs").GetProperty("parts");
        Assert.Equal([0, 1], parts.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("index").GetInt32()));
        foreach (var choice in parts.GetProperty("choices").EnumerateArray())
        {
            var content = choice.GetProperty("logprobs").GetProperty("content").EnumerateArray().ToList();
            Assert.NotEmpty(content);
            Assert.All(content, t => Assert.Equal(2, t.GetProperty("top_logprobs").GetArrayLength()));
            Assert.Equal(choice.GetProperty("message").GetProperty("content").GetString()!.TrimStart(),
                string.Concat(content.Select(t => t.GetProperty("token").GetString())).TrimStart());
        }
        Assert.Equal(1, chat.GetProperty("outputs").GetProperty("developer").GetProperty("choices").GetArrayLength());

        var completions = results[1];
        Assert.Equal("completed", completions.GetProperty("status").GetString());
        var prompts = completions.GetProperty("outputs").GetProperty("prompts").GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal([0, 1, 2, 3], prompts.Select(c => c.GetProperty("index").GetInt32()));
        Assert.All(prompts, c => Assert.Equal(c.GetProperty("logprobs").GetProperty("tokens").GetArrayLength(),
            c.GetProperty("logprobs").GetProperty("token_logprobs").GetArrayLength()));
        Assert.Equal(3, completions.GetProperty("outputs").GetProperty("ids").GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        // refused bodies beside one that runs: each refusal an error line with its code and param, the rest run
        var refused = results[2];
        Assert.Equal("completed", refused.GetProperty("status").GetString());
        Assert.Equal(["fine"], refused.GetProperty("outputs").EnumerateObject().Select(p => p.Name));
        Assert.Equal(Refusals.Select(r => (r.Id, r.Code, r.Param)).Order(), refused.GetProperty("errors").EnumerateObject()
            .Select(p => (p.Name, p.Value.GetProperty("code").GetString()!, p.Value.GetProperty("param").GetString()!)).Order());
    }

    [Fact]
    public async Task Validate_unsupportedBodies_nameTheCodeAndParamOfEachLine()
    {
        using var client = server.Client(ServerFixture.Keys[8]);
        var input = string.Concat(Refusals.Select(r => Line(r.Id, "/v1/chat/completions", r.Body)));
        var fileId = (await Api.UploadAsync(client, input)).GetProperty("id").GetString()!;

        var body = await Api.ReadAsync(await client.PostAsync("v1/batches/validate", Api.Json(new { input_file_id = fileId })), 400);

        Assert.Equal(Refusals.Select(r => (r.Id, r.Code, r.Param)), body.GetProperty("validation").GetProperty("errors").EnumerateArray()
            .Select(e => (e.GetProperty("custom_id").GetString()!, e.GetProperty("code").GetString()!, e.GetProperty("param").GetString()!)));
    }

    private async Task<List<JsonElement>> RunBodiesAsync()
    {
        var folder = Path.Combine(server.DataPath, "sdk-bodies");
        Directory.CreateDirectory(folder);
        string Write(string name, string content)
        {
            var path = Path.Combine(folder, name);
            File.WriteAllText(path, content);
            return path;
        }
        var refused = string.Concat(Refusals.Select(r => Line(r.Id, "/v1/chat/completions", r.Body)))
            + Line("fine", "/v1/chat/completions", """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2}""");
        var run = await SdkClientTests.RunAsync("node",
            ["bodies.mjs", Write("chat.jsonl", ChatInput), Write("completions.jsonl", CompletionsInput), Write("refused.jsonl", refused)], new()
            {
                ["OPENAI_BASE_URL"] = new Uri(server.BaseAddress, "v1").ToString(),
                ["OPENAI_API_KEY"] = ServerFixture.Keys[8],
            }, TimeSpan.FromSeconds(120));
        Assert.True(run.ExitCode == 0, $"node bodies.mjs failed ({run.ExitCode}): {run.Error}\n{run.Output}");
        var results = run.Output.Trim().Split('\n').Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(3, results.Count);
        return results;
    }
}

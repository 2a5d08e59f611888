namespace VicunaBatch.Api.Tests;

[Collection(ServerCollection.Name)]
public sealed class ValidationTests(ServerFixture server)
{
    private const string BadInput =
        """{"custom_id":"ok-1","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"hi"}]}}""" + "\n" +
        "{not json\n" +
        """{"custom_id":"ok-1","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"again"}]}}""" + "\n";

    [Fact]
    public async Task Validate_uploadedInvalidFile_returns400WithLineReasonsAndDuplicates()
    {
        using var client = server.Client(ServerFixture.Keys[4]);
        var fileId = (await Api.UploadAsync(client, BadInput)).GetProperty("id").GetString()!;
        var body = await Api.ReadAsync(await client.PostAsync("v1/batches/validate", Api.Json(new { input_file_id = fileId })), 400);
        Assert.Equal("invalid_input_file", body.GetProperty("error").GetProperty("code").GetString());
        var report = body.GetProperty("validation");
        Assert.Equal(3, report.GetProperty("num_lines").GetInt32());
        Assert.Equal(2, report.GetProperty("num_invalid").GetInt32());
        Assert.Equal([(2, "invalid_json"), (3, "duplicate_custom_id")], report.GetProperty("errors").EnumerateArray()
            .Select(e => (e.GetProperty("line").GetInt32(), e.GetProperty("code").GetString())));
        Assert.Equal(["ok-1"], report.GetProperty("duplicate_custom_ids").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Validate_multipartValidFile_countsPromptTokensAgainstContext()
    {
        using var client = server.Client(ServerFixture.Keys[4]);
        var form = Api.FileForm(Api.ChatLines("v-1", "v-2"));
        var report = await Api.ReadAsync(await client.PostAsync("v1/batches/validate?endpoint=/v1/chat/completions", form), 200);
        Assert.True(report.GetProperty("valid").GetBoolean());
        Assert.Equal(2048, report.GetProperty("context_length").GetInt32());
        var tokens = report.GetProperty("prompt_tokens").EnumerateArray().ToList();
        Assert.Equal(["v-1", "v-2"], tokens.Select(t => t.GetProperty("custom_id").GetString()));
        Assert.All(tokens, t => Assert.True(t.GetProperty("tokens").GetInt32() > 10));
        Assert.Equal(0, report.GetProperty("num_over_context").GetInt32());
    }

    [Fact]
    public async Task CreateBatch_invalidFile_returns400WithReasonsAndNoBatch()
    {
        using var client = server.Client(ServerFixture.Keys[6]);
        var fileId = (await Api.UploadAsync(client, BadInput)).GetProperty("id").GetString()!;
        var body = await Api.ReadAsync(await Api.CreateBatchAsync(client, fileId), 400);
        var message = body.GetProperty("error").GetProperty("message").GetString()!;
        Assert.Contains("line 2: invalid_json", message);
        Assert.Contains("line 3: duplicate_custom_id", message);
        Assert.Equal("input_file_id", body.GetProperty("error").GetProperty("param").GetString());
        var list = await Api.ReadAsync(await client.GetAsync("v1/batches"), 200);
        Assert.Equal(0, list.GetProperty("data").GetArrayLength());
    }

    [Fact]
    public async Task UploadFile_wrongPurpose_returns400()
    {
        using var client = server.Client(ServerFixture.Keys[5]);
        var body = await Api.ReadAsync(await client.PostAsync("v1/files", Api.FileForm(Api.ChatLines("w"), purpose: "fine-tune")), 400);
        Assert.Equal("purpose", body.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task CreateBatch_webhookWithoutSecret_returnsGeneratedSecretOnceOnly()
    {
        using var client = server.Client(ServerFixture.Keys[5]);
        var fileId = (await Api.UploadAsync(client, Api.ChatLines("h-1"))).GetProperty("id").GetString()!;
        var created = await Api.ReadAsync(await client.PostAsync("v1/batches", Api.Json(new
        {
            input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "24h",
            webhook = new { url = "http://127.0.0.1:9/hook", events = new[] { "batch.completed" } },
        })), 200);
        var secret = created.GetProperty("webhook").GetProperty("secret").GetString()!;
        Assert.StartsWith("whsec_", secret);
        Assert.Equal(32, Convert.FromBase64String(secret["whsec_".Length..]).Length);
        var fetched = await Api.ReadAsync(await client.GetAsync($"v1/batches/{created.GetProperty("id").GetString()}"), 200);
        Assert.Equal("http://127.0.0.1:9/hook", fetched.GetProperty("webhook").GetProperty("url").GetString());
        Assert.False(fetched.GetProperty("webhook").TryGetProperty("secret", out _));
        Assert.DoesNotContain(secret, fetched.GetRawText());
    }
}

using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

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

    /// <summary>Issue 23: as at OpenAI, a file with no valid line is no 400 at create: the batch is created, fails
    /// validation with each bad line in <c>errors.data</c> (<c>{code, line, message, param}</c>), and sends <c>batch.failed</c>.</summary>
    [Fact]
    public async Task CreateBatch_fileWithNoValidLine_batchFailsWithLineErrorsAndABatchFailedEvent()
    {
        var received = new ConcurrentQueue<string>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        await using var receiver = builder.Build();
        receiver.MapPost("/hook", async (HttpContext context) =>
        {
            received.Enqueue(await new StreamReader(context.Request.Body).ReadToEndAsync());
            return Results.Ok();
        });
        await receiver.StartAsync();
        using var client = server.Client(ServerFixture.Keys[6]);
        var noValidLine = "{not json\n" + """{"custom_id":"get","method":"GET","url":"/v1/chat/completions","body":{"messages":[]}}""" + "\n";
        var fileId = (await Api.UploadAsync(client, noValidLine)).GetProperty("id").GetString()!;

        var created = await Api.ReadAsync(await client.PostAsync("v1/batches", Api.Json(new
        {
            input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "24h", webhook = new { url = receiver.Urls.Single() + "/hook" },
        })), 200);

        var batchId = created.GetProperty("id").GetString()!;
        var batch = await Api.ReadAsync(await client.GetAsync($"v1/batches/{batchId}"), 200);
        Assert.Equal("failed", batch.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Number, batch.GetProperty("failed_at").ValueKind);
        Assert.Equal(JsonValueKind.Null, batch.GetProperty("in_progress_at").ValueKind);
        Assert.Equal("list", batch.GetProperty("errors").GetProperty("object").GetString());
        Assert.Equal([("invalid_json", 1, null), ("invalid_method", 2, "method")], batch.GetProperty("errors").GetProperty("data").EnumerateArray()
            .Select(e => (e.GetProperty("code").GetString(), e.GetProperty("line").GetInt32(), e.GetProperty("param").GetString())));
        Assert.All(batch.GetProperty("errors").GetProperty("data").EnumerateArray(), e => Assert.False(string.IsNullOrEmpty(e.GetProperty("message").GetString())));
        var list = await Api.ReadAsync(await client.GetAsync("v1/batches"), 200);
        Assert.Contains(batchId, list.GetProperty("data").EnumerateArray().Select(b => b.GetProperty("id").GetString()));

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (received.IsEmpty && DateTime.UtcNow < deadline) await Task.Delay(100);
        var evt = JsonDocument.Parse(Assert.Single(received)).RootElement;
        Assert.Equal(("batch.failed", batchId), (evt.GetProperty("type").GetString(), evt.GetProperty("data").GetProperty("id").GetString()));
    }

    /// <summary>Issue 23: a batch that fails validation names the model its lines asked for, as OpenAI's does, even when
    /// every line naming it is refused; lines that name none leave it the default model.</summary>
    [Theory]
    [InlineData("""{"custom_id":"get","method":"GET","url":"/v1/chat/completions","body":{"model":"tiny-second","messages":[]}}""", ServerFixture.SecondModel)]
    [InlineData("{not json", "tiny")]
    public async Task CreateBatch_fileWithNoValidLine_failedBatchNamesTheModelItsLinesAskedFor(string line, string model)
    {
        using var client = server.Client(ServerFixture.Keys[6]);
        var fileId = (await Api.UploadAsync(client, line + "\n")).GetProperty("id").GetString()!;

        var created = await Api.ReadAsync(await Api.CreateBatchAsync(client, fileId), 200);

        var batch = await Api.ReadAsync(await client.GetAsync($"v1/batches/{created.GetProperty("id").GetString()}"), 200);
        Assert.Equal(("failed", model), (batch.GetProperty("status").GetString(), batch.GetProperty("model").GetString()));
        Assert.Equal(model, created.GetProperty("model").GetString());
    }

    /// <summary>Issue 23, our extra kept: where OpenAI fails the whole file, a file with some valid lines runs them, and
    /// each bad line (a duplicate id, a line for another endpoint, invalid JSON) is an error line in OpenAI's shape: a 400
    /// response whose body's error has the code, the param and the input line.</summary>
    [Fact]
    public async Task CreateBatch_fileWithSomeBadLines_runsTheRestAndEachBadLineIsAnErrorLine()
    {
        using var client = server.Client(ServerFixture.Keys[6]);
        var input = BadInput + """{"custom_id":"other","method":"POST","url":"/v1/completions","body":{"prompt":"hi"}}""" + "\n";
        var fileId = (await Api.UploadAsync(client, input)).GetProperty("id").GetString()!;

        var created = await Api.ReadAsync(await Api.CreateBatchAsync(client, fileId), 200);
        var done = await Api.PollAsync(client, created.GetProperty("id").GetString()!, "completed");

        Assert.Equal((4, 1, 3), (done.GetProperty("request_counts").GetProperty("total").GetInt32(),
            done.GetProperty("request_counts").GetProperty("completed").GetInt32(), done.GetProperty("request_counts").GetProperty("failed").GetInt32()));
        Assert.Equal(JsonValueKind.Null, done.GetProperty("errors").ValueKind);
        var output = Lines(await client.GetStringAsync($"v1/files/{done.GetProperty("output_file_id").GetString()}/content"));
        Assert.Equal(["ok-1"], output.Select(l => l.GetProperty("custom_id").GetString()));
        var errors = Lines(await client.GetStringAsync($"v1/files/{done.GetProperty("error_file_id").GetString()}/content"));
        Assert.All(errors, e => Assert.Equal((400, JsonValueKind.Null), (e.GetProperty("response").GetProperty("status_code").GetInt32(), e.GetProperty("error").ValueKind)));
        Assert.Equal([(2, "invalid_json", null), (3, "duplicate_custom_id", "custom_id"), (4, "unknown_endpoint", "url")], errors
            .Select(e => e.GetProperty("response").GetProperty("body").GetProperty("error"))
            .Select(e => (e.GetProperty("line").GetInt32(), e.GetProperty("code").GetString(), e.GetProperty("param").GetString())));
    }

    private static List<JsonElement> Lines(string jsonl) =>
        jsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

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

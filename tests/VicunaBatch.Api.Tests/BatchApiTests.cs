using System.Net;
using System.Text.Json;

namespace VicunaBatch.Api.Tests;

[Collection(ServerCollection.Name)]
public sealed class BatchApiTests(ServerFixture server)
{
    private static readonly string KeyA = ServerFixture.Keys[0], KeyB = ServerFixture.Keys[1], KeyC = ServerFixture.Keys[2], KeyD = ServerFixture.Keys[3];

    [Theory]
    [InlineData(null)]
    [InlineData("not-a-known-key")]
    public async Task Request_missingOrWrongKey_returns401InOpenAiErrorShape(string? key)
    {
        using var client = server.Client(key);
        foreach (var response in new[] { await client.GetAsync("v1/batches"), await client.PostAsync("v1/files", Api.FileForm(Api.ChatLines("x"))) })
        {
            var body = await Api.ReadAsync(response, 401);
            Assert.Equal("invalid_api_key", body.GetProperty("error").GetProperty("code").GetString());
            Assert.False(string.IsNullOrEmpty(body.GetProperty("error").GetProperty("message").GetString()));
        }
    }

    [Fact]
    public async Task CreateBatch_validFile_completesWithEveryCustomIdOnceInOutput()
    {
        using var client = server.Client(KeyA);
        var ids = Enumerable.Range(0, 10).Select(i => $"req-{i}").ToArray();
        var file = await Api.UploadAsync(client, Api.ChatLines(ids));
        Assert.Matches("^file-[0-9a-f]{32}$", file.GetProperty("id").GetString());
        Assert.Equal("batch", file.GetProperty("purpose").GetString());

        var created = await Api.ReadAsync(await Api.CreateBatchAsync(client, file.GetProperty("id").GetString()!), 200);
        var batchId = created.GetProperty("id").GetString()!;
        Assert.Matches("^batch_[0-9a-f]{32}$", batchId);
        Assert.Equal(file.GetProperty("id").GetString(), created.GetProperty("input_file_id").GetString());
        Assert.True(created.TryGetProperty("progress", out _));

        var done = await Api.PollAsync(client, batchId, "completed");
        Assert.Equal(10, done.GetProperty("request_counts").GetProperty("completed").GetInt32());
        var outputId = done.GetProperty("output_file_id").GetString()!;
        var meta = await Api.ReadAsync(await client.GetAsync($"v1/files/{outputId}"), 200);
        Assert.Equal("batch_output", meta.GetProperty("purpose").GetString());
        var output = await client.GetStringAsync($"v1/files/{outputId}/content");
        var outputIds = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("custom_id").GetString()).ToList();
        Assert.Equal(ids.Order(), outputIds.Order());
        Assert.Equal("", await client.GetStringAsync($"v1/files/{done.GetProperty("error_file_id").GetString()}/content"));
    }

    [Fact]
    public async Task OtherTenant_filesAndBatches_return404AndEmptyList()
    {
        using var owner = server.Client(KeyA);
        using var other = server.Client(KeyC);
        var fileId = (await Api.UploadAsync(owner, Api.ChatLines("iso-1"))).GetProperty("id").GetString()!;
        var batchId = (await Api.ReadAsync(await Api.CreateBatchAsync(owner, fileId), 200)).GetProperty("id").GetString()!;

        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"v1/files/{fileId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"v1/files/{fileId}/content")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"v1/batches/{batchId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.PostAsync($"v1/batches/{batchId}/cancel", null)).StatusCode);
        var notFound = await Api.ReadAsync(await Api.CreateBatchAsync(other, fileId), 404);
        Assert.Equal("not_found", notFound.GetProperty("error").GetProperty("code").GetString());
        var list = await Api.ReadAsync(await other.GetAsync("v1/batches"), 200);
        Assert.Equal(0, list.GetProperty("data").GetArrayLength());
        Assert.False(list.GetProperty("has_more").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, (await owner.GetAsync($"v1/batches/{batchId}")).StatusCode);
    }

    [Fact]
    public async Task CreateBatch_unknownEndpoint_returns400NamingTheEndpoint()
    {
        using var client = server.Client(KeyA);
        var fileId = (await Api.UploadAsync(client, Api.ChatLines("e-1"))).GetProperty("id").GetString()!;
        var body = await Api.ReadAsync(await Api.CreateBatchAsync(client, fileId, "/v1/embeddings"), 400);
        var error = body.GetProperty("error");
        Assert.Equal("endpoint", error.GetProperty("param").GetString());
        Assert.Contains("/v1/embeddings", error.GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task ListBatches_afterAndLimit_pagesNewestFirst()
    {
        using var client = server.Client(KeyD);
        var fileId = (await Api.UploadAsync(client, Api.ChatLines("p-1"))).GetProperty("id").GetString()!;
        var created = new List<string>();
        for (int i = 0; i < 3; i++)
            created.Add((await Api.ReadAsync(await Api.CreateBatchAsync(client, fileId), 200)).GetProperty("id").GetString()!);
        created.Reverse(); // newest first

        var first = await Api.ReadAsync(await client.GetAsync("v1/batches?limit=2"), 200);
        Assert.Equal("list", first.GetProperty("object").GetString());
        Assert.Equal(created[..2], first.GetProperty("data").EnumerateArray().Select(b => b.GetProperty("id").GetString()!));
        Assert.True(first.GetProperty("has_more").GetBoolean());
        Assert.Equal(created[0], first.GetProperty("first_id").GetString());
        Assert.Equal(created[1], first.GetProperty("last_id").GetString());

        var second = await Api.ReadAsync(await client.GetAsync($"v1/batches?limit=2&after={created[1]}"), 200);
        Assert.Equal([created[2]], second.GetProperty("data").EnumerateArray().Select(b => b.GetProperty("id").GetString()!));
        Assert.False(second.GetProperty("has_more").GetBoolean());
        await Api.ReadAsync(await client.GetAsync("v1/batches?limit=0"), 400);
    }

    [Fact]
    public async Task CancelBatch_inProgress_endsCancelledAndCompletedBatchReturns409()
    {
        using var client = server.Client(KeyB);
        var lines = string.Concat(Enumerable.Range(0, 48).Select(i =>
            $$$"""{"custom_id":"c-{{{i}}}","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"count {{{i}}}"}],"max_tokens":200}}""" + "\n"));
        var fileId = (await Api.UploadAsync(client, lines)).GetProperty("id").GetString()!;
        var batchId = (await Api.ReadAsync(await Api.CreateBatchAsync(client, fileId), 200)).GetProperty("id").GetString()!;

        var cancelling = await Api.ReadAsync(await client.PostAsync($"v1/batches/{batchId}/cancel", null), 200);
        Assert.Contains(cancelling.GetProperty("status").GetString(), new[] { "cancelling", "cancelled" });
        var cancelled = await Api.PollAsync(client, batchId, "cancelled");
        Assert.NotEqual(JsonValueKind.Null, cancelled.GetProperty("cancelled_at").ValueKind);

        var again = await Api.ReadAsync(await client.PostAsync($"v1/batches/{batchId}/cancel", null), 409);
        Assert.Equal("batch_not_cancellable", again.GetProperty("error").GetProperty("code").GetString());
    }
}

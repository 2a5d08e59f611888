using System.Net;
using System.Text.Json;

namespace VicunaBatch.Api.Tests;

/// <summary>
/// Issue 23: the Files surface as OpenAI's — a cursor list, delete, <c>expires_after</c> on upload and
/// <c>output_expires_after</c> on batch create — over HTTP against the real serve host.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class FilesApiTests(ServerFixture server)
{
    /// <summary>A tenant of this class's listing test alone, so its list holds only what the test uploads.</summary>
    private static readonly string ListingKey = ServerFixture.Keys[11];
    private static readonly string Key = ServerFixture.Keys[0];

    private static MultipartFormDataContent FormWithExpiry(string? anchor, string? seconds)
    {
        var form = Api.FileForm(Api.ChatLines("x-1"));
        if (anchor is not null) form.Add(new StringContent(anchor), "expires_after[anchor]");
        if (seconds is not null) form.Add(new StringContent(seconds), "expires_after[seconds]");
        return form;
    }

    private static List<string> Ids(JsonElement list) => list.GetProperty("data").EnumerateArray().Select(f => f.GetProperty("id").GetString()!).ToList();

    [Fact]
    public async Task ListFiles_limitAndAfter_pageThroughEveryFileNewestFirstAndAscOldestFirst()
    {
        using var client = server.Client(ListingKey);
        var ids = new List<string>();
        for (int i = 0; i < 3; i++) ids.Add((await Api.UploadAsync(client, Api.ChatLines($"l-{i}"))).GetProperty("id").GetString()!);

        var first = await Api.ReadAsync(await client.GetAsync("v1/files?limit=2"), 200);
        var second = await Api.ReadAsync(await client.GetAsync($"v1/files?limit=2&after={first.GetProperty("last_id").GetString()}"), 200);
        var ascending = await Api.ReadAsync(await client.GetAsync("v1/files?order=asc&purpose=batch"), 200);

        Assert.Equal("list", first.GetProperty("object").GetString());
        Assert.Equal([ids[2], ids[1]], Ids(first));
        Assert.Equal((ids[2], ids[1], true), (first.GetProperty("first_id").GetString(), first.GetProperty("last_id").GetString(), first.GetProperty("has_more").GetBoolean()));
        Assert.Equal([ids[0]], Ids(second));
        Assert.False(second.GetProperty("has_more").GetBoolean());
        Assert.Equal(ids, Ids(ascending));
        Assert.Equal("file", ascending.GetProperty("data")[0].GetProperty("object").GetString());
        Assert.Empty(Ids(await Api.ReadAsync(await client.GetAsync("v1/files?purpose=batch_output"), 200)));
        using var other = server.Client(ServerFixture.Keys[1]);
        Assert.Empty(Ids(await Api.ReadAsync(await other.GetAsync($"v1/files?after={ids[2]}"), 200))); // another tenant's cursor
    }

    [Theory]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=10001", "limit")]
    [InlineData("limit=ten", "limit")]
    [InlineData("order=newest", "order")]
    public async Task ListFiles_badParameter_is400NamingIt(string query, string param)
    {
        using var client = server.Client(Key);

        var error = Api.AssertOpenAiError(await Api.ReadAsync(await client.GetAsync($"v1/files?{query}"), 400), "invalid_request_error", null);

        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task DeleteFile_isDeletedAndThenEveryCallOnItIs404()
    {
        using var client = server.Client(Key);
        var fileId = (await Api.UploadAsync(client, Api.ChatLines("d-1"))).GetProperty("id").GetString()!;
        using (var other = server.Client(ServerFixture.Keys[1]))
            Assert.Equal(HttpStatusCode.NotFound, (await other.DeleteAsync($"v1/files/{fileId}")).StatusCode); // not theirs

        var deleted = await Api.ReadAsync(await client.DeleteAsync($"v1/files/{fileId}"), 200);

        Assert.Equal($$"""{"id":"{{fileId}}","object":"file","deleted":true}""", deleted.GetRawText());
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"v1/files/{fileId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"v1/files/{fileId}/content")).StatusCode);
        Assert.DoesNotContain(fileId, Ids(await Api.ReadAsync(await client.GetAsync("v1/files"), 200)));
        Api.AssertOpenAiError(await Api.ReadAsync(await client.DeleteAsync($"v1/files/{fileId}"), 404), "invalid_request_error", "not_found");
        Api.AssertOpenAiError(await Api.ReadAsync(await Api.CreateBatchAsync(client, fileId), 404), "invalid_request_error", "not_found");
    }

    [Fact]
    public async Task DeleteFile_inputOfABatchJustCreated_theBatchStillCompletesWithEveryRequest()
    {
        using var client = server.Client(Key);
        var ids = Enumerable.Range(0, 5).Select(i => $"held-{i}").ToArray();
        var fileId = (await Api.UploadAsync(client, Api.ChatLines(ids))).GetProperty("id").GetString()!;
        var batchId = (await Api.ReadAsync(await Api.CreateBatchAsync(client, fileId), 200)).GetProperty("id").GetString()!;

        await Api.ReadAsync(await client.DeleteAsync($"v1/files/{fileId}"), 200);

        var done = await Api.PollAsync(client, batchId, "completed");
        Assert.Equal(fileId, done.GetProperty("input_file_id").GetString());
        var output = await client.GetStringAsync($"v1/files/{done.GetProperty("output_file_id").GetString()}/content");
        Assert.Equal(ids, output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("custom_id").GetString()).Order());
    }

    [Fact]
    public async Task UploadFile_expiresAfterOrNone_setsExpiresAtAsOpenAi()
    {
        using var client = server.Client(Key);

        var brief = await Api.ReadAsync(await client.PostAsync("v1/files", FormWithExpiry("created_at", "3600")), 200);
        var byDefault = await Api.UploadAsync(client, Api.ChatLines("x-2"));

        Assert.Equal(brief.GetProperty("created_at").GetInt64() + 3600, brief.GetProperty("expires_at").GetInt64());
        Assert.Equal(byDefault.GetProperty("created_at").GetInt64() + 30 * 86_400, byDefault.GetProperty("expires_at").GetInt64());
        var again = await Api.ReadAsync(await client.GetAsync($"v1/files/{brief.GetProperty("id").GetString()}"), 200);
        Assert.Equal(brief.GetProperty("expires_at").GetInt64(), again.GetProperty("expires_at").GetInt64());
    }

    [Theory]
    [InlineData("created_at", "3599", "expires_after.seconds")]
    [InlineData("created_at", "2592001", "expires_after.seconds")]
    [InlineData("created_at", "soon", "expires_after.seconds")]
    [InlineData("created_at", null, "expires_after.seconds")]
    [InlineData("last_active_at", "3600", "expires_after.anchor")]
    [InlineData(null, "3600", "expires_after.anchor")]
    public async Task UploadFile_badExpiresAfter_is400NamingTheField(string? anchor, string? seconds, string param)
    {
        using var client = server.Client(Key);

        var error = Api.AssertOpenAiError(await Api.ReadAsync(await client.PostAsync("v1/files", FormWithExpiry(anchor, seconds)), 400), "invalid_request_error", null);

        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task CreateBatch_outputExpiresAfter_givesItsOutputAndErrorFilesExpiresAt()
    {
        using var client = server.Client(Key);
        var fileId = (await Api.UploadAsync(client, Api.ChatLines("oe-1"))).GetProperty("id").GetString()!;
        var bad = await Api.ReadAsync(await client.PostAsync("v1/batches", Api.Json(new
        {
            input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "24h", output_expires_after = new { anchor = "created_at", seconds = 60 },
        })), 400);
        Assert.Equal("output_expires_after.seconds", Api.AssertOpenAiError(bad, "invalid_request_error", null).GetProperty("param").GetString());

        var created = await Api.ReadAsync(await client.PostAsync("v1/batches", Api.Json(new
        {
            input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "24h", output_expires_after = new { anchor = "created_at", seconds = 7200 },
        })), 200);
        var done = await Api.PollAsync(client, created.GetProperty("id").GetString()!, "completed");

        foreach (var kind in new[] { "output_file_id", "error_file_id" })
        {
            var file = await Api.ReadAsync(await client.GetAsync($"v1/files/{done.GetProperty(kind).GetString()}"), 200);
            Assert.Equal(file.GetProperty("created_at").GetInt64() + 7200, file.GetProperty("expires_at").GetInt64());
        }
    }
}

using System.Text;

namespace VicunaBatch.Api.Tests;

/// <summary>
/// Issue 22, item 8: <c>completion_window</c> the string <c>"24h"</c>, or 400 before anything is stored. The body names a
/// file that does not exist: a body that passed would be answered 404 for it.
/// </summary>
[Collection(ProbeCollection.Name)]
public sealed class BatchCreateBodyTests(ProbeServerFixture server)
{
    private static readonly string Key = ServerFixture.Keys[2];
    private const string NoSuchFile = "file-00000000000000000000000000000000";

    [Theory]
    [InlineData("")] // missing
    [InlineData(",\"completion_window\":null")]
    [InlineData(",\"completion_window\":24")]
    [InlineData(",\"completion_window\":[\"24h\"]")]
    [InlineData(",\"completion_window\":{\"h\":24}")]
    [InlineData(",\"completion_window\":\"1h\"")]
    [InlineData(",\"completion_window\":\"24H\"")]
    [InlineData(",\"completion_window\":\"\"")]
    public async Task CreateBatch_completionWindowNotTheString24h_is400WithParamCompletionWindow(string window)
    {
        var error = await RefusedAsync($$"""{"input_file_id":"{{NoSuchFile}}","endpoint":"/v1/chat/completions"{{window}}}""");

        Assert.Equal("completion_window", error.GetProperty("param").GetString());
        Assert.Contains("24h", error.GetProperty("message").GetString());
    }

    /// <summary>Posts the body, expects a 400 in OpenAI's shape and the blob store as it was; returns the error.</summary>
    private async Task<System.Text.Json.JsonElement> RefusedAsync(string body)
    {
        using var client = server.Client(Key);
        var before = server.BlobEntries();
        var response = await client.PostAsync("v1/batches", new StringContent(body, Encoding.UTF8, "application/json"));
        var error = Api.AssertOpenAiError(await Api.ReadAsync(response, 400), "invalid_request_error", null);
        Assert.Equal(before, server.BlobEntries());
        return error;
    }
}

namespace VicunaBatch.Api.Tests;

/// <summary>
/// Issue 23: every answer of the API carries <c>x-request-id</c> (its own, <c>req_</c> + 32 hex digits), and every
/// refusal a retry cannot change carries <c>x-should-retry: false</c>, which the OpenAI SDKs obey (without it they
/// retry 408, 409, 429 and 5xx). A success and an unknown route's 404 are answers like the rest.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class ResponseHeadersTests(ServerFixture server)
{
    [Fact]
    public async Task EveryAnswer_hasItsOwnRequestId_andEachRefusalSaysNotToRetry()
    {
        using var client = server.Client(ServerFixture.Keys[12]);
        using var stranger = server.Client("not-a-known-key");
        var fileId = (await Api.UploadAsync(client, Api.ChatLines("hd-1"))).GetProperty("id").GetString()!;
        var batchId = (await Api.ReadAsync(await Api.CreateBatchAsync(client, fileId), 200)).GetProperty("id").GetString()!;
        await Api.PollAsync(client, batchId, "completed");

        var responses = new[]
        {
            await client.GetAsync($"v1/batches/{batchId}"),
            await client.PostAsync($"v1/batches/{batchId}/cancel", null), // completed: 409
            await client.GetAsync("v1/batches/batch_nope"),
            await client.GetAsync("v1/batches?limit=0"),
            await stranger.GetAsync("v1/batches"),
            await client.GetAsync("v1/no-such-route"),
        };

        Assert.Equal([(200, null), (409, "false"), (404, "false"), (400, "false"), (401, "false"), (404, "false")],
            responses.Select(r => ((int)r.StatusCode, r.Headers.TryGetValues("x-should-retry", out var v) ? string.Join(",", v) : null)));
        var ids = responses.Select(r => string.Join(",", r.Headers.GetValues("x-request-id"))).ToList();
        Assert.All(ids, id => Assert.Matches("^req_[0-9a-f]{32}$", id));
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }
}

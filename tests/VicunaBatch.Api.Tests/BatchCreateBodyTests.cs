using System.Text;
using System.Text.Json.Nodes;

namespace VicunaBatch.Api.Tests;

/// <summary>
/// Issue 22, items 6 and 8: <c>metadata</c> within OpenAI's limits (16 pairs, keys of at most 64 characters, values of at
/// most 512, strings only) and <c>completion_window</c> the string <c>"24h"</c>, or 400 before anything is stored. The
/// body names a file that does not exist: a body that passed would be answered 404 for it.
/// </summary>
[Collection(ProbeCollection.Name)]
public sealed class BatchCreateBodyTests(ProbeServerFixture server)
{
    private static readonly string Key = ServerFixture.Keys[2];
    private const string NoSuchFile = "file-00000000000000000000000000000000";

    public static TheoryData<string, string, string> BadMetadata => new()
    {
        { "17 pairs", Metadata(17, 2, 1).ToJsonString(), "at most 16 pairs" },
        { "a key of 65 characters", Metadata(1, 65, 1).ToJsonString(), "at most 64 characters" },
        { "a value of 513 characters", Metadata(1, 1, 513).ToJsonString(), "at most 512 characters" },
        { "a value of 513 characters, each outside the BMP", new JsonObject { ["k"] = string.Concat(Enumerable.Repeat("😀", 513)) }.ToJsonString(), "at most 512 characters" },
        { "a number", """{"k": 1}""", "must be a string" },
        { "null value", """{"k": null}""", "must be a string" },
        { "a list", """["k", "v"]""", "must be an object" },
        { "a string", "\"k=v\"", "must be an object" },
    };

    [Theory]
    [MemberData(nameof(BadMetadata))]
    public async Task CreateBatch_metadataOutsideOpenAisLimits_is400WithParamMetadata(string why, string metadata, string reason)
    {
        var error = await RefusedAsync($$"""{"input_file_id":"{{NoSuchFile}}","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{{metadata}}}""");

        Assert.Equal("metadata", error.GetProperty("param").GetString());
        Assert.True(error.GetProperty("message").GetString()!.Contains(reason), $"{why}: {error}");
    }

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

    public static TheoryData<string, JsonObject> MetadataAtTheLimits => new()
    {
        { "16 pairs, keys of 64 and values of 512 characters", Metadata(16, 64, 512) },
        { "characters, not UTF-16 units or bytes", new JsonObject { [string.Concat(Enumerable.Repeat("é", 64))] = string.Concat(Enumerable.Repeat("😀", 512)) } },
        { "empty", new JsonObject() },
    };

    [Theory]
    [MemberData(nameof(MetadataAtTheLimits))]
    public async Task CreateBatch_metadataAtTheLimitsAndWindow24h_passesTheBody(string why, JsonObject metadata)
    {
        using var client = server.Client(Key);
        var body = new JsonObject
        {
            ["input_file_id"] = NoSuchFile, ["endpoint"] = "/v1/chat/completions", ["completion_window"] = "24h", ["metadata"] = metadata,
        };

        var response = await client.PostAsync("v1/batches", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));

        var error = Api.AssertOpenAiError(await Api.ReadAsync(response, 404), "invalid_request_error", "not_found");
        Assert.True(error.GetProperty("param").GetString() == "input_file_id", why);
    }

    /// <summary>Issue 23: <c>output_expires_after</c> as OpenAI's <c>{"anchor": "created_at", "seconds": 3600..2592000}</c>.</summary>
    [Theory]
    [InlineData("\"1h\"", "output_expires_after")]
    [InlineData("{\"seconds\":3600}", "output_expires_after.anchor")]
    [InlineData("{\"anchor\":\"last_active_at\",\"seconds\":3600}", "output_expires_after.anchor")]
    [InlineData("{\"anchor\":7,\"seconds\":3600}", "output_expires_after.anchor")]
    [InlineData("{\"anchor\":\"created_at\"}", "output_expires_after.seconds")]
    [InlineData("{\"anchor\":\"created_at\",\"seconds\":\"3600\"}", "output_expires_after.seconds")]
    [InlineData("{\"anchor\":\"created_at\",\"seconds\":3600.5}", "output_expires_after.seconds")]
    [InlineData("{\"anchor\":\"created_at\",\"seconds\":3599}", "output_expires_after.seconds")]
    [InlineData("{\"anchor\":\"created_at\",\"seconds\":2592001}", "output_expires_after.seconds")]
    public async Task CreateBatch_outputExpiresAfterNotOpenAis_is400NamingTheField(string policy, string param)
    {
        var error = await RefusedAsync($$"""{"input_file_id":"{{NoSuchFile}}","endpoint":"/v1/chat/completions","completion_window":"24h","output_expires_after":{{policy}}}""");

        Assert.Equal(param, error.GetProperty("param").GetString());
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

    /// <summary><paramref name="numPairs"/> pairs, each key <paramref name="keyLength"/> characters long (made distinct
    /// by its last characters), each value <paramref name="valueLength"/>.</summary>
    internal static JsonObject Metadata(int numPairs, int keyLength, int valueLength)
    {
        var metadata = new JsonObject();
        for (int i = 0; i < numPairs; i++)
        {
            var suffix = i.ToString("D2");
            var key = keyLength <= 2 ? suffix[^keyLength..] : new string('k', keyLength - 2) + suffix;
            metadata[key] = new string('v', valueLength);
        }
        return metadata;
    }
}

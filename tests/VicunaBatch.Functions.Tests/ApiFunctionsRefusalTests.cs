using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using VicunaBatch.Azure.Tests;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Functions.Tests;

/// <summary>
/// Issue 22 on the Function App: the same handlers refuse what serve refuses — in OpenAI's error shape, with nothing
/// left in the containers — and answer a bug with a logged 500 in the same shape.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class ApiFunctionsRefusalTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const int MaxUploadBytes = 4096;
    private const string Line = "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"one\"}]}}\n";
    private const string Boundary = "refusal-b1";
    private FunctionsRig _rig = null!;

    public Task InitializeAsync()
    {
        _rig = new FunctionsRig(azurite, new Dictionary<string, string?> { ["Api:MaxUploadBytes"] = MaxUploadBytes.ToString() });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    private static ByteArrayContent Multipart(string body)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        content.Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/form-data; boundary={Boundary}");
        return content;
    }

    private static string FilePart(string content, string filename = "input.jsonl") =>
        $"--{Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\r\n{content}\r\n";

    private static string Field(string name, string value) => $"--{Boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n";

    private const string End = $"--{Boundary}--\r\n";

    /// <summary>What the requests stored, less the markers of the tenant-id move (<see cref="Core.Batches.TenantRename"/>), which the
    /// first request of an installation writes whatever it asks.</summary>
    private async Task<List<string>> StoredAsync() => [.. await _rig.Blobs.ListAsync("files/").ToListAsync(), .. await _rig.Blobs.ListAsync("jobs/").ToListAsync(),
        .. (await _rig.Blobs.ListAsync("tenants/").ToListAsync()).Where(b => !b.EndsWith("/renamed", StringComparison.Ordinal))];

    private static JsonElement Error(JsonElement body, string type)
    {
        var error = body.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        return error;
    }

    public static TheoryData<string, string, int, string?> Uploads => new()
    {
        { "two file parts", FilePart(Line) + FilePart(Line, "b.jsonl") + Field("purpose", "batch") + End, 400, "file" },
        { "purpose refused after the file", FilePart(Line) + Field("purpose", "fine-tune") + End, 400, "purpose" },
        { "ends inside the file part", Field("purpose", "batch") + FilePart(Line)[..^2], 400, null },
        { "over the upload limit", Field("purpose", "batch") + FilePart(new string('x', MaxUploadBytes)) + End, 413, null },
    };

    [Theory]
    [MemberData(nameof(Uploads))]
    public async Task UploadFile_refused_answersInOpenAiShapeAndStoresNothing(string why, string body, int status, string? param)
    {
        var (actual, response) = await _rig.HttpAsync((f, r) => f.UploadFileAsync(r), "POST", "/v1/files", FunctionsRig.KeyA, Multipart(body));

        Assert.True(actual == status, $"{why}: {actual} {response}");
        var error = Error(response, "invalid_request_error");
        if (param is not null) Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Empty(await StoredAsync());
    }

    public static TheoryData<string, object, string> Bodies => new()
    {
        { "17 metadata pairs", new { input_file_id = "file-00000000000000000000000000000000", endpoint = "/v1/chat/completions", completion_window = "24h",
            metadata = Enumerable.Range(0, 17).ToDictionary(i => $"k{i}", _ => "v") }, "metadata" },
        { "a metadata value of 513 characters", new { input_file_id = "file-00000000000000000000000000000000", endpoint = "/v1/chat/completions",
            completion_window = "24h", metadata = new { k = new string('v', 513) } }, "metadata" },
        { "no completion_window", new { input_file_id = "file-00000000000000000000000000000000", endpoint = "/v1/chat/completions" }, "completion_window" },
        { "completion_window 24", new { input_file_id = "file-00000000000000000000000000000000", endpoint = "/v1/chat/completions", completion_window = 24 }, "completion_window" },
    };

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task CreateBatch_bodyOutsideOpenAisRules_is400WithItsParamAndCreatesNothing(string why, object body, string param)
    {
        var json = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

        var (status, response) = await _rig.HttpAsync((f, r) => f.CreateBatchAsync(r), "POST", "/v1/batches", FunctionsRig.KeyA, json);

        Assert.True(status == 400, $"{why}: {status} {response}");
        Assert.Equal(param, Error(response, "invalid_request_error").GetProperty("param").GetString());
        Assert.Empty(await StoredAsync());
    }

    [Fact]
    public async Task GetFile_whoseRecordIsCorrupt_is500InOpenAiShapeAndLogged()
    {
        var (_, file) = await _rig.HttpAsync((f, r) => f.UploadFileAsync(r), "POST", "/v1/files", FunctionsRig.KeyA,
            Multipart(Field("purpose", "batch") + FilePart(Line) + End));
        var fileId = file.GetProperty("id").GetString()!;
        await _rig.Blobs.PutBytesAsync($"files/{fileId}/file.json", Encoding.UTF8.GetBytes("{ not json"), BlobCondition.None);

        var (status, body) = await _rig.HttpAsync((f, r) => f.GetFileAsync(r, fileId), "GET", $"/v1/files/{fileId}", FunctionsRig.KeyA);

        Assert.Equal(500, status);
        Assert.Equal("internal_error", Error(body, "server_error").GetProperty("code").GetString());
        Assert.DoesNotContain(" at ", body.ToString());
        Assert.Contains(_rig.Logs.Entries, e => e.Level == LogLevel.Error && e.Exception is JsonException);
    }
}

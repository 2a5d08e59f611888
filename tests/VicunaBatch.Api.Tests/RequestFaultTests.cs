using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace VicunaBatch.Api.Tests;

/// <summary>
/// Issue 22, item 4: what a client can send that once answered a 500 (or an empty 413) now answers a 4xx in OpenAI's error
/// shape, and leaves serve's blob store as it was; a real 500 is logged and answered in the same shape, without a trace.
/// </summary>
[Collection(ProbeCollection.Name)]
public sealed class RequestFaultTests(ProbeServerFixture server)
{
    private static readonly string Key = ServerFixture.Keys[0];
    private const string Line = """{"custom_id":"r-1","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"hi"}]}}""" + "\n";

    public static TheoryData<string, string> MalformedBodies => new()
    {
        { "v1/files", "" }, // no part at all
        { "v1/files", "this is not multipart at all" },
        { "v1/files", RawMultipart.Field("purpose", "batch") + RawMultipart.FileHeader() + Line }, // ends inside the file part
        { "v1/files", RawMultipart.Field("purpose", "batch") + "--" + RawMultipart.Boundary + "\r\nContent-Disposition form-data no colon\r\n\r\nx\r\n" + RawMultipart.End },
        // the file part is whole and stored before the bad part: it must go too
        { "v1/files", RawMultipart.File(Line) + "--" + RawMultipart.Boundary + "\r\nContent-Disposition form-data no colon\r\n\r\nx\r\n" + RawMultipart.End },
        { "v1/batches/validate", RawMultipart.FileHeader() + Line },
        { "v1/files", string.Concat(Enumerable.Range(0, 17).Select(i => RawMultipart.Field($"f{i}", "x"))) + RawMultipart.End }, // more than 16 parts
    };

    [Theory]
    [MemberData(nameof(MalformedBodies))]
    public async Task MultipartRoute_malformedBody_is400InOpenAiShapeAndStoresNothing(string route, string body)
    {
        using var client = server.Client(Key);
        var before = server.BlobEntries();

        var response = await client.PostAsync(route, RawMultipart.Content(body));

        Api.AssertOpenAiError(await Api.ReadAsync(response, 400), "invalid_request_error", "invalid_multipart");
        Assert.Equal(before, server.BlobEntries());
    }

    [Fact]
    public async Task UploadFile_boundaryLongerThanTheReadersBuffer_is400()
    {
        using var client = server.Client(Key);
        var boundary = new string('b', 5000);
        var body = $"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--{boundary}--\r\n";

        var response = await client.PostAsync("v1/files", RawMultipart.Content(body, boundary));

        Api.AssertOpenAiError(await Api.ReadAsync(response, 400), "invalid_request_error", "invalid_multipart");
    }

    /// <summary>Refused before a byte of the body is read; 40 MB is past Kestrel's own 30 MB default too, which must not
    /// cut the connection while it drains the rest (the client would read a reset, not the 413).</summary>
    [Theory]
    [InlineData(ProbeServerFixture.MaxUploadBytes)]
    [InlineData(40_000_000)]
    public async Task UploadFile_overTheLimitWithContentLength_is413AndStoresNothing(long fileLength)
    {
        using var client = server.Client(Key);
        var before = server.BlobEntries();
        var body = RawMultipart.Field("purpose", "batch") + RawMultipart.FileHeader()
            + new string('x', (int)fileLength) + "\r\n" + RawMultipart.End;

        var response = await client.PostAsync("v1/files", RawMultipart.Content(body));

        var error = Api.AssertOpenAiError(await Api.ReadAsync(response, 413), "invalid_request_error", "request_too_large");
        Assert.Contains("1048576 bytes", error.GetProperty("message").GetString());
        Assert.Equal(before, server.BlobEntries());
    }

    /// <summary>The server answers once the limit is passed, stores none of it, and drains the rest to nowhere (so the
    /// client reads the 413 rather than a reset connection).</summary>
    [Theory]
    [InlineData("v1/files")]
    [InlineData("v1/batches/validate")]
    public async Task MultipartRoute_overTheLimitChunked_is413AndStoresNothing(string route)
    {
        using var client = server.Client(Key);
        var before = server.BlobEntries();
        const long filler = 64L * 1024 * 1024; // 64 times the limit
        var stream = new FillerStream(RawMultipart.Field("purpose", "batch") + RawMultipart.FileHeader(), filler, "\r\n" + RawMultipart.End);
        var request = new HttpRequestMessage(HttpMethod.Post, route) { Content = RawMultipart.WithType(new StreamContent(stream, 16 * 1024)) };
        request.Headers.TransferEncodingChunked = true;

        var response = await client.SendAsync(request);

        Api.AssertOpenAiError(await Api.ReadAsync(response, 413), "invalid_request_error", "request_too_large");
        Assert.Equal(before, server.BlobEntries());
    }

    [Fact]
    public async Task CreateBatch_webhookHostThatDoesNotResolve_is400WithItsOwnCode()
    {
        using var client = server.Client(Key);
        // a 64-character label is longer than DNS allows: the resolver library fails it without sending a query, as it
        // fails a name the DNS server does not know, and the test needs no network
        var url = $"https://{new string('a', 64)}.example/hook";

        var response = await client.PostAsync("v1/batches", Api.Json(new
        {
            input_file_id = "file-00000000000000000000000000000000", endpoint = "/v1/chat/completions", completion_window = "24h", webhook = new { url },
        }));

        var error = Api.AssertOpenAiError(await Api.ReadAsync(response, 400), "invalid_request_error", "webhook_host_unresolved");
        Assert.Equal("webhook.url", error.GetProperty("param").GetString());
        Assert.Contains("did not resolve", error.GetProperty("message").GetString());
    }

    public static TheoryData<string, byte[]> UndecodableJson => new()
    {
        { "invalid UTF-8 in a value", Bytes("{\"input_file_id\":\"file-", [0xff, 0xfe], "\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}") },
        { "a lone surrogate escape", Bytes("{\"input_file_id\":\"\\ud800\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}", [], "") },
        { "invalid UTF-8 in a metadata key", Bytes("{\"input_file_id\":\"file-00000000000000000000000000000000\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\",\"metadata\":{\"",
            [0xc3, 0x28], "\":\"v\"}}") },
    };

    [Theory]
    [MemberData(nameof(UndecodableJson))]
    public async Task CreateBatch_jsonWhoseStringsDoNotDecode_is400(string why, byte[] body)
    {
        using var client = server.Client(Key);

        var response = await client.PostAsync("v1/batches", new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } });

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, why);
        Api.AssertOpenAiError(await Api.ReadAsync(response, 400), "invalid_request_error", null);
    }

    [Fact]
    public async Task CreateBatch_bodyOverTheServersRequestLimit_is413InOpenAiShape()
    {
        using var client = server.Client(Key);
        // Kestrel's default request limit is 30,000,000 bytes; sent chunked, so it is found while reading. Just past it: the
        // server cannot drain a body past its own limit, and what the client has not sent when the connection closes is small
        var stream = new FillerStream("""{"input_file_id":"file-00000000000000000000000000000000","endpoint":"/v1/chat/completions","metadata":{"k":" """,
            30_000_000, "\"}}");
        var request = new HttpRequestMessage(HttpMethod.Post, "v1/batches") { Content = new StreamContent(stream, 16 * 1024) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.TransferEncodingChunked = true;

        var response = await client.SendAsync(request);

        Api.AssertOpenAiError(await Api.ReadAsync(response, 413), "invalid_request_error", "request_too_large");
    }

    [Theory]
    [InlineData("POST", "v1/files", "application/json", "{}")]
    [InlineData("POST", "v1/files", "application/x-www-form-urlencoded", "purpose=batch")]
    [InlineData("POST", "v1/files", "multipart/form-data", "")] // no boundary
    [InlineData("POST", "v1/batches", "multipart/form-data; boundary=x", "--x--\r\n")]
    [InlineData("POST", "v1/batches", "application/json", "")]
    [InlineData("POST", "v1/batches", "application/json", "[1, 2]")]
    [InlineData("POST", "v1/batches/validate", "text/plain", "input_file_id")]
    [InlineData("GET", "v1/batches?limit=abc", null, null)]
    [InlineData("GET", "v1/batches?limit=1e3", null, null)]
    [InlineData("GET", "v1/batches?limit=-1", null, null)]
    [InlineData("GET", "v1/batches?limit=99999999999", null, null)]
    [InlineData("GET", "v1/batches?limit=1&limit=2", null, null)]
    public async Task Route_wrongContentTypeOrQuery_is400InOpenAiShape(string method, string route, string? contentType, string? body)
    {
        using var client = server.Client(Key);
        var request = new HttpRequestMessage(new HttpMethod(method), route);
        if (body is not null) request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body)) { Headers = { ContentType = MediaTypeHeaderValue.Parse(contentType!) } };

        Api.AssertOpenAiError(await Api.ReadAsync(await client.SendAsync(request), 400), "invalid_request_error", null);
    }

    [Theory]
    [InlineData("v1/batches?after=../../etc")]
    [InlineData("v1/batches?after=batch_00000000000000000000000000000000&limit=100")]
    public async Task ListBatches_afterNoBatchOfTheTenant_isAnEmptyPage(string route)
    {
        using var client = server.Client(ServerFixture.Keys[7]);
        var page = await Api.ReadAsync(await client.GetAsync(route), 200);
        Assert.Equal(0, page.GetProperty("data").GetArrayLength());
    }

    [Fact]
    public async Task FileContent_uploadedWithControlCharactersInItsName_isServedUnderACleanName()
    {
        using var client = server.Client(Key);
        var body = RawMultipart.Field("purpose", "batch")
            + $"--{RawMultipart.Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''bad%0D%0Aname%07.jsonl\r\n\r\n{Line}\r\n"
            + RawMultipart.End;

        var file = await Api.ReadAsync(await client.PostAsync("v1/files", RawMultipart.Content(body)), 200);
        var fileId = file.GetProperty("id").GetString()!;
        var content = await client.GetAsync($"v1/files/{fileId}/content");

        Assert.Equal("bad__name_.jsonl", file.GetProperty("filename").GetString());
        Assert.Equal(HttpStatusCode.OK, content.StatusCode);
        Assert.Equal(Line, await content.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task GetFile_whoseStoredRecordIsCorrupt_is500InOpenAiShapeWithoutATraceAndIsLogged()
    {
        using var client = server.Client(Key);
        var body = RawMultipart.Field("purpose", "batch") + RawMultipart.File(Line) + RawMultipart.End;
        var fileId = (await Api.ReadAsync(await client.PostAsync("v1/files", RawMultipart.Content(body)), 200)).GetProperty("id").GetString()!;
        await File.WriteAllTextAsync(Path.Combine(server.DataPath, "blobs", "files", fileId, "file.json"), "{ not json");

        var response = await client.GetAsync($"v1/files/{fileId}");

        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Api.AssertOpenAiError(JsonDocument.Parse(text).RootElement, "server_error", "internal_error");
        Assert.DoesNotContain(" at ", text);
        Assert.DoesNotContain("JsonException", text);
        Assert.Contains(server.Logs.Entries, e => e.Level == LogLevel.Error && e.Exception is JsonException && e.Message.Contains($"/v1/files/{fileId}"));
    }

    private static byte[] Bytes(string before, byte[] raw, string after) => [.. Encoding.UTF8.GetBytes(before), .. raw, .. Encoding.UTF8.GetBytes(after)];
}

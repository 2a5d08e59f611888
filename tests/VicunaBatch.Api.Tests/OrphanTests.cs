using System.Net;
using System.Net.Sockets;
using System.Text;

namespace VicunaBatch.Api.Tests;

/// <summary>
/// Issue 22, item 5: a refused or abandoned upload leaves nothing in serve's blob store — no content blob that no file
/// names, no empty folder. The OpenAI SDKs send the file part before <c>purpose</c>, so the content is stored before
/// the purpose is read.
/// </summary>
[Collection(ProbeCollection.Name)]
public sealed class OrphanTests(ProbeServerFixture server)
{
    private static readonly string Key = ServerFixture.Keys[1];
    private const string Line = """{"custom_id":"o-1","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"hi"}]}}""" + "\n";

    [Fact]
    public async Task UploadFile_twoFileParts_is400AndStoresNeither()
    {
        using var client = server.Client(Key);
        var before = server.BlobEntries();
        var body = RawMultipart.File(Line, filename: "a.jsonl") + RawMultipart.File(Line, filename: "b.jsonl") + RawMultipart.Field("purpose", "batch") + RawMultipart.End;

        var response = await client.PostAsync("v1/files", RawMultipart.Content(body));

        var error = Api.AssertOpenAiError(await Api.ReadAsync(response, 400), "invalid_request_error", null);
        Assert.Equal("file", error.GetProperty("param").GetString());
        Assert.Equal(before, server.BlobEntries());
    }

    [Theory]
    [InlineData("fine-tune")]
    [InlineData(null)]
    public async Task UploadFile_purposeAfterTheFileRefusedOrMissing_is400AndLeavesNoFolder(string? purpose)
    {
        using var client = server.Client(Key);
        var before = server.BlobEntries();
        var body = RawMultipart.File(Line) + (purpose is null ? "" : RawMultipart.Field("purpose", purpose)) + RawMultipart.End;

        var response = await client.PostAsync("v1/files", RawMultipart.Content(body));

        var error = Api.AssertOpenAiError(await Api.ReadAsync(response, 400), "invalid_request_error", null);
        Assert.Equal("purpose", error.GetProperty("param").GetString());
        Assert.Equal(before, server.BlobEntries());
    }

    [Fact]
    public async Task UploadFile_clientGoneAfterTheFilePart_leavesNothing()
    {
        var before = server.BlobEntries();
        using (var tcp = new TcpClient())
        {
            // by hand, so that the file part is on the wire (an HttpClient keeps its last chunk until the body ends)
            await tcp.ConnectAsync(IPAddress.Loopback, server.BaseAddress.Port);
            var network = tcp.GetStream();
            var body = Encoding.UTF8.GetBytes(RawMultipart.File(Line) + $"--{RawMultipart.Boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nba");
            await network.WriteAsync(Encoding.ASCII.GetBytes(
                $"POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {Key}\r\nTransfer-Encoding: chunked\r\n" +
                $"Content-Type: multipart/form-data; boundary={RawMultipart.Boundary}\r\n\r\n{body.Length:x}\r\n"));
            await network.WriteAsync(body);
            await network.WriteAsync("\r\n"u8.ToArray());
            await network.FlushAsync();

            // the file part ended (the next part began): its content is stored, under a file no one can see yet
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!server.BlobEntries().Except(before).Any(e => e.StartsWith("files/", StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
                await Task.Delay(20);
            Assert.Contains(server.BlobEntries().Except(before), e => e.EndsWith("/content.jsonl", StringComparison.Ordinal));
            tcp.Client.LingerState = new LingerOption(true, 0); // gone mid-body: the connection is reset, as when a client dies
        }

        // the server finds out at its next read
        var settled = DateTime.UtcNow.AddSeconds(10);
        while (!before.SequenceEqual(server.BlobEntries()) && DateTime.UtcNow < settled) await Task.Delay(50);
        Assert.Equal(before, server.BlobEntries());
    }
}

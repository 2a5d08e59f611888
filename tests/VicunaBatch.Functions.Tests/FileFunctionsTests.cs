using System.Net.Http.Headers;
using System.Text;
using Microsoft.Azure.Functions.Worker;
using VicunaBatch.Azure.Tests;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Files;

namespace VicunaBatch.Functions.Tests;

/// <summary>Issue 23 on Azure: the files' list and delete routes and the files' sweep timer, onto Azurite.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class FileFunctionsTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const string Lines = "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n";
    private FunctionsRig _rig = null!;

    public Task InitializeAsync()
    {
        _rig = new FunctionsRig(azurite);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    private static MultipartFormDataContent FileForm(string? expiresAfterSeconds = null)
    {
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(Encoding.UTF8.GetBytes(Lines));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/jsonl");
        form.Add(file, "file", "input.jsonl");
        form.Add(new StringContent("batch"), "purpose");
        if (expiresAfterSeconds is not null)
        {
            form.Add(new StringContent("created_at"), "expires_after[anchor]");
            form.Add(new StringContent(expiresAfterSeconds), "expires_after[seconds]");
        }
        return form;
    }

    private async Task<string> UploadAsync(string? expiresAfterSeconds = null) =>
        (await _rig.HttpAsync((f, r) => f.UploadFileAsync(r), "POST", "/v1/files", FunctionsRig.KeyA, FileForm(expiresAfterSeconds))).Body
            .GetProperty("id").GetString()!;

    [Fact]
    public async Task FilesListAndDelete_withABearerKey_listPagesAndDeleteTheTenantsFile()
    {
        var first = await UploadAsync();
        _rig.Time.Advance(TimeSpan.FromSeconds(1));
        var second = await UploadAsync();

        var (listed, page) = await _rig.HttpAsync((f, r) => f.ListFilesAsync(r), "GET", "/v1/files?limit=1", FunctionsRig.KeyA);
        var (otherTenant, _) = await _rig.HttpAsync((f, r) => f.DeleteFileAsync(r, second), "DELETE", $"/v1/files/{second}", FunctionsRig.KeyB);
        var (deleted, answer) = await _rig.HttpAsync((f, r) => f.DeleteFileAsync(r, second), "DELETE", $"/v1/files/{second}", FunctionsRig.KeyA);
        var (relisted, rest) = await _rig.HttpAsync((f, r) => f.ListFilesAsync(r), "GET", "/v1/files", FunctionsRig.KeyA);

        Assert.Equal((200, 404, 200, 200), (listed, otherTenant, deleted, relisted));
        Assert.Equal((second, true), (page.GetProperty("data")[0].GetProperty("id").GetString(), page.GetProperty("has_more").GetBoolean()));
        Assert.True(answer.GetProperty("deleted").GetBoolean());
        Assert.Equal([first], rest.GetProperty("data").EnumerateArray().Select(e => e.GetProperty("id").GetString()));
        Assert.Empty(await _rig.Blobs.ListAsync(FileIds.Prefix + second).ToListAsync()); // no batch held it: its content went at once
    }

    [Fact]
    public async Task FileSweep_filePastItsExpiresAt_isRemovedWithItsBlobs()
    {
        var brief = await UploadAsync(expiresAfterSeconds: "3600");
        var longer = await UploadAsync(expiresAfterSeconds: "7200");
        _rig.Time.Advance(TimeSpan.FromHours(1));

        var result = await _rig.Function<FileSweepFunction>().RunAsync(new TimerInfo(), default);

        Assert.Equal(new FileSweepResult(1, 0), result);
        var names = await _rig.Blobs.ListAsync("").ToListAsync();
        Assert.DoesNotContain(names, n => n.Contains(brief));
        Assert.Contains(names, n => n.Contains(longer));
        Assert.Equal(200, (await _rig.HttpAsync((f, r) => f.GetFileAsync(r, longer), "GET", $"/v1/files/{longer}", FunctionsRig.KeyA)).Status);
        Assert.Equal(404, (await _rig.HttpAsync((f, r) => f.GetFileAsync(r, brief), "GET", $"/v1/files/{brief}", FunctionsRig.KeyA)).Status);
    }
}

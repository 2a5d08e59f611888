using System.Net.Http.Headers;
using System.Reflection;
using System.Text.Json;
using System.Text;
using Microsoft.Azure.Functions.Worker;
using VicunaBatch.Azure.Tests;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Functions.Tests;

/// <summary>The HTTP triggers, called as the ASP.NET Core integration calls them, through the Api's handlers onto Azurite.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ApiFunctionsTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private FunctionsRig _rig = null!;

    public Task InitializeAsync()
    {
        _rig = new FunctionsRig(azurite);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    private static MultipartFormDataContent FileForm(string content, string filename = "input.jsonl")
    {
        var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" } };
        var file = new ByteArrayContent(Encoding.UTF8.GetBytes(content));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/jsonl");
        form.Add(file, "file", filename);
        return form;
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    private const string Lines =
        "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"one\"}]}}\n" +
        "{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"two\"}]}}\n";

    [Fact]
    public async Task UploadFile_withoutOrWithAWrongBearerKey_401InOpenAiErrorShape()
    {
        var (missing, body) = await _rig.HttpAsync((f, r) => f.UploadFileAsync(r), "POST", "/v1/files", null, FileForm(Lines));
        var (wrong, _) = await _rig.HttpAsync((f, r) => f.ListBatchesAsync(r), "GET", "/v1/batches", "key-nobody-has-this");

        Assert.Equal((401, 401), (missing, wrong));
        Assert.Equal("invalid_api_key", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("authentication_error", body.GetProperty("error").GetProperty("type").GetString());
        Assert.Empty(await _rig.Blobs.ListAsync("files/").ToListAsync()); // nothing was stored
    }

    [Fact]
    public async Task FileAndBatchRoutes_withABearerKey_runTheApiHandlersForThatTenant()
    {
        var (uploaded, file) = await _rig.HttpAsync((f, r) => f.UploadFileAsync(r), "POST", "/v1/files", FunctionsRig.KeyA, FileForm(Lines));
        var fileId = file.GetProperty("id").GetString()!;
        var (got, meta) = await _rig.HttpAsync((f, r) => f.GetFileAsync(r, fileId), "GET", $"/v1/files/{fileId}", FunctionsRig.KeyA);
        var (otherTenant, _) = await _rig.HttpAsync((f, r) => f.GetFileAsync(r, fileId), "GET", $"/v1/files/{fileId}", FunctionsRig.KeyB);
        var (validated, report) = await _rig.HttpAsync((f, r) => f.ValidateAsync(r), "POST", "/v1/batches/validate", FunctionsRig.KeyA,
            Json(new { input_file_id = fileId }));
        var (created, batch) = await _rig.HttpAsync((f, r) => f.CreateBatchAsync(r), "POST", "/v1/batches", FunctionsRig.KeyA,
            Json(new { input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "24h" }));
        var batchId = batch.GetProperty("id").GetString()!;
        var (listed, list) = await _rig.HttpAsync((f, r) => f.ListBatchesAsync(r), "GET", "/v1/batches", FunctionsRig.KeyA);
        var (cancelled, cancelling) = await _rig.HttpAsync((f, r) => f.CancelBatchAsync(r, batchId), "POST", $"/v1/batches/{batchId}/cancel", FunctionsRig.KeyA);
        var (read, again) = await _rig.HttpAsync((f, r) => f.GetBatchAsync(r, batchId), "GET", $"/v1/batches/{batchId}", FunctionsRig.KeyA);

        Assert.Equal((200, 200, 404, 200, 200, 200, 200, 200), (uploaded, got, otherTenant, validated, created, listed, cancelled, read));
        Assert.Equal(("file", "batch", "input.jsonl"), (file.GetProperty("object").GetString(), meta.GetProperty("purpose").GetString(), meta.GetProperty("filename").GetString()));
        Assert.True(report.GetProperty("valid").GetBoolean(), report.ToString());
        Assert.Equal(("batch", "in_progress", fileId), (batch.GetProperty("object").GetString(), batch.GetProperty("status").GetString(), batch.GetProperty("input_file_id").GetString()));
        Assert.Equal([batchId], list.GetProperty("data").EnumerateArray().Select(b => b.GetProperty("id").GetString()));
        Assert.Equal(("cancelling", "cancelling"), (cancelling.GetProperty("status").GetString(), again.GetProperty("status").GetString()));
        Assert.Equal(1, await _rig.Shards.CountAsync()); // two requests, two per shard: one message on the work queue
    }

    [Fact]
    public async Task ModelRoutes_answerTheServedModels_andABatchRunsOnTheModelItsLinesName()
    {
        var (listed, list) = await _rig.HttpAsync((f, r) => f.ListModelsAsync(r), "GET", "/v1/models", FunctionsRig.KeyA);
        var (got, model) = await _rig.HttpAsync((f, r) => f.GetModelAsync(r, FunctionsRig.OtherModel), "GET", $"/v1/models/{FunctionsRig.OtherModel}", FunctionsRig.KeyA);
        var (missing, notFound) = await _rig.HttpAsync((f, r) => f.GetModelAsync(r, "gpt-4o"), "GET", "/v1/models/gpt-4o", FunctionsRig.KeyA);
        var (deleted, refused) = await _rig.HttpAsync((f, r) => f.DeleteModelAsync(r, FunctionsRig.Model), "DELETE", $"/v1/models/{FunctionsRig.Model}", FunctionsRig.KeyA);
        var (anonymous, _) = await _rig.HttpAsync((f, r) => f.ListModelsAsync(r), "GET", "/v1/models", null);

        Assert.Equal((200, 200, 404, 403, 401), (listed, got, missing, deleted, anonymous));
        Assert.Equal([FunctionsRig.Model, FunctionsRig.OtherModel], list.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        Assert.Equal(("model", FunctionsRig.OtherModel), (model.GetProperty("object").GetString(), model.GetProperty("id").GetString()));
        Assert.Equal("model_not_found", notFound.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("permission_denied", refused.GetProperty("error").GetProperty("code").GetString());

        var other = await CreateBatchAsync(Lines.Replace("\"body\":{", $"\"body\":{{\"model\":\"{FunctionsRig.OtherModel}\","));
        var unknown = await CreateBatchAsync(Lines.Replace("\"body\":{", "\"body\":{\"model\":\"gpt-4o\","));

        Assert.Equal(("in_progress", FunctionsRig.OtherModel), (other.GetProperty("status").GetString(), other.GetProperty("model").GetString()));
        Assert.Equal(("failed", "gpt-4o"), (unknown.GetProperty("status").GetString(), unknown.GetProperty("model").GetString()));
        var error = unknown.GetProperty("errors").GetProperty("data")[0];
        Assert.Equal(("model_not_found", 1), (error.GetProperty("code").GetString(), error.GetProperty("line").GetInt32()));
        Assert.Equal(1, await _rig.Shards.CountAsync()); // the batch of the model served has its shard; the other none
    }

    private async Task<JsonElement> CreateBatchAsync(string lines)
    {
        var (_, file) = await _rig.HttpAsync((f, r) => f.UploadFileAsync(r), "POST", "/v1/files", FunctionsRig.KeyA, FileForm(lines));
        var (status, batch) = await _rig.HttpAsync((f, r) => f.CreateBatchAsync(r), "POST", "/v1/batches", FunctionsRig.KeyA,
            Json(new { input_file_id = file.GetProperty("id").GetString(), endpoint = "/v1/chat/completions", completion_window = "24h" }));
        Assert.Equal(200, status);
        return batch;
    }

    [Fact]
    public async Task Blobs_of_tenants_with_unkeyed_ids_move_to_the_keyed_ids_before_the_first_request_is_answered()
    {
        // tests/data/unkeyed-tenants (written by serve before tenant ids were keyed) in this app's containers, as an
        // existing deployment holds them; the app's hosted services do not run here, so the first request runs the move
        await using var rig = new FunctionsRig(azurite, new Dictionary<string, string?> { ["Api:Keys"] = "key-old-tenant-a1,key-old-tenant-b2" });
        var fixture = Path.Combine(Testing.Checkout.Root, "tests", "data", "unkeyed-tenants", "blobs");
        foreach (var file in Directory.EnumerateFiles(fixture, "*", SearchOption.AllDirectories))
            await rig.Blobs.PutBytesAsync(Path.GetRelativePath(fixture, file).Replace('\\', '/'), File.ReadAllBytes(file), BlobCondition.None);
        const string upload = "file-08a6dd8360c140eca4349ba1feb2d175";

        var (listed, list) = await rig.HttpAsync((f, r) => f.ListBatchesAsync(r), "GET", "/v1/batches", "key-old-tenant-a1");
        var (got, content) = await rig.HttpAsync((f, r) => f.GetFileContentAsync(r, upload), "GET", $"/v1/files/{upload}/content", "key-old-tenant-b2");

        Assert.Equal((200, 200), (listed, got));
        Assert.Equal(["batch_c769bf3a702c4cb0b209932475ef9eda", "batch_6d48ee74bfe445feabc9cb3c7b2bf507"],
            list.GetProperty("data").EnumerateArray().Select(b => b.GetProperty("id").GetString()));
        Assert.Equal("hello there\n", content.GetString());
        var names = await rig.Blobs.ListAsync("").ToListAsync();
        Assert.DoesNotContain(names, n => n.Contains("tfafa13b3b45db5176c053803b5363bb5") || n.Contains("t876ac370410b80616ec8a59baf308e77"));
        Assert.Equal(2, names.Count(n => n.StartsWith("tenants/", StringComparison.Ordinal) && n.EndsWith("/renamed", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task FileContent_ofAnUpload_streamsTheBytesBack()
    {
        var (_, file) = await _rig.HttpAsync((f, r) => f.UploadFileAsync(r), "POST", "/v1/files", FunctionsRig.KeyA, FileForm(Lines));
        var fileId = file.GetProperty("id").GetString()!;

        var (status, content) = await _rig.HttpAsync((f, r) => f.GetFileContentAsync(r, fileId), "GET", $"/v1/files/{fileId}/content", FunctionsRig.KeyA);

        Assert.Equal((200, Lines), (status, content.GetString()));
    }

    [Fact]
    public async Task BatchWithWebhook_createdOverHttp_endsWithOneEventSignedWithTheBatchSecretNamingADownloadableOutput()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (_, file) = await _rig.HttpAsync((f, r) => f.UploadFileAsync(r), "POST", "/v1/files", FunctionsRig.KeyA, FileForm(Lines));
        var (_, batch) = await _rig.HttpAsync((f, r) => f.CreateBatchAsync(r), "POST", "/v1/batches", FunctionsRig.KeyA, Json(new
        {
            input_file_id = file.GetProperty("id").GetString(), endpoint = "/v1/chat/completions", completion_window = "24h",
            webhook = new { url = receiver.Url },
        }));
        var batchId = batch.GetProperty("id").GetString()!;

        await _rig.RunShardsAsync();
        await _rig.RunFinalizerAsync();
        await _rig.RunDelivererAsync();

        var (_, headers, body) = Assert.Single(receiver.Received);
        var secret = batch.GetProperty("webhook").GetProperty("secret").GetString()!;
        Assert.Equal(WebhookVerifyResult.Valid, WebhookSigner.Verify(secret, headers, body, _rig.Time.GetUtcNow()));
        var data = JsonDocument.Parse(body).RootElement.GetProperty("data");
        Assert.Equal((batchId, "completed"), (data.GetProperty("id").GetString(), data.GetProperty("status").GetString()));
        var outputFileId = data.GetProperty("output_file_id").GetString()!;
        var (status, output) = await _rig.HttpAsync((f, r) => f.GetFileContentAsync(r, outputFileId), "GET", $"/v1/files/{outputFileId}/content", FunctionsRig.KeyA);
        Assert.Equal(200, status);
        Assert.Equal(["a", "b"], output.GetString()!.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("custom_id").GetString()));
        var (_, done) = await _rig.HttpAsync((f, r) => f.GetBatchAsync(r, batchId), "GET", $"/v1/batches/{batchId}", FunctionsRig.KeyA);
        Assert.Equal(("completed", outputFileId), (done.GetProperty("status").GetString(), done.GetProperty("output_file_id").GetString()));
    }

    [Fact]
    public void HttpTriggers_areAnonymousOnTheOpenAiRoutes()
    {
        var triggers = typeof(ApiFunctions).GetMethods()
            .Select(m => m.GetParameters().Select(p => p.GetCustomAttribute<HttpTriggerAttribute>()).SingleOrDefault(a => a is not null))
            .OfType<HttpTriggerAttribute>().ToList();

        Assert.All(triggers, t => Assert.Equal(AuthorizationLevel.Anonymous, t.AuthLevel));
        Assert.Equal(
            ["delete v1/files/{fileId}", "delete v1/models/{modelId}", "get v1/batches", "get v1/batches/{batchId}", "get v1/files", "get v1/files/{fileId}",
             "get v1/files/{fileId}/content", "get v1/models", "get v1/models/{modelId}", "post v1/batches", "post v1/batches/validate",
             "post v1/batches/{batchId}/cancel", "post v1/files"],
            triggers.Select(t => $"{string.Join(',', t.Methods!)} {t.Route}").Order(StringComparer.Ordinal));
    }
}

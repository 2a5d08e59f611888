using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Cli;
using VicunaBatch.Testing;

namespace VicunaBatch.Api.Tests;

/// <summary>
/// Tenant ids keyed with a secret of the installation (issue 22, item 7): a copy of the blobs, whose folder names and
/// owner fields are tenant ids, lets no one test guessed keys offline. The real serve host on 127.0.0.1, each test on
/// data folders of its own.
/// </summary>
public sealed class TenantIdTests : IAsyncLifetime
{
    // the keys and ids of tests/data/unkeyed-tenants (see its README)
    private const string KeyA = "key-old-tenant-a1";
    private const string KeyB = "key-old-tenant-b2";
    private const string BatchA1 = "batch_6d48ee74bfe445feabc9cb3c7b2bf507";
    private const string BatchA2 = "batch_c769bf3a702c4cb0b209932475ef9eda";
    private const string InputA1 = "file-ae9a4876f9c34147b1ad99af82311d2b";
    private const string RefusedUploadA = "file-95d245fe34c644289615a6074c944357";
    private const string UploadB = "file-08a6dd8360c140eca4349ba1feb2d175";
    private static readonly string Fixture = Path.Combine(Checkout.Root, "tests", "data", "unkeyed-tenants");

    private readonly string _root = Path.Combine(Path.GetTempPath(), $"vicuna-tenant-tests-{Guid.NewGuid():N}");
    private readonly List<WebApplication> _apps = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var app in _apps) await app.DisposeAsync();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    /// <summary>The id earlier versions gave a key: SHA-256 of it, unkeyed.</summary>
    private static string UnkeyedId(string key) => "t" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..32];

    private async Task<WebApplication> StartAsync(string data, params string[] keys)
    {
        var app = ServeHost.Build(new ServeSettings(0, [ModelChoice.Of(Path.Combine(Checkout.Root, "models", "tiny"))], data, keys)
        {
            Defaults = new Execution.RequestDefaults { MaxTokens = 4 },
        }, ["--Logging:LogLevel:Default=Warning"]);
        _apps.Add(app);
        await app.StartAsync();
        return app;
    }

    private static HttpClient Client(WebApplication app, string key)
    {
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        var client = new HttpClient { BaseAddress = new Uri(address.Replace("[::1]", "127.0.0.1")), Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", key);
        return client;
    }

    private static async Task StopAsync(WebApplication app)
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }

    /// <summary>Every file and folder name below <paramref name="folder"/>, and every file's text.</summary>
    private static string NamesAndContents(string folder) => string.Join('\n',
        Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(folder, p) + (File.Exists(p) ? "\n" + File.ReadAllText(p) : "")));

    [Fact]
    public async Task One_key_has_different_tenant_ids_in_two_installations_and_neither_is_its_unkeyed_hash()
    {
        const string key = "key-same-in-both-0001";
        var ids = new List<string>();
        foreach (var installation in new[] { "one", "two" })
        {
            var data = Path.Combine(_root, installation);
            var app = await StartAsync(data, key);
            using var client = Client(app, key);
            var file = await Api.UploadAsync(client, Api.ChatLines("a"));
            await Api.ReadAsync(await Api.CreateBatchAsync(client, file.GetProperty("id").GetString()!), 200);
            await StopAsync(app);
            _apps.Remove(app);
            ids.Add(Path.GetFileName(Assert.Single(Directory.GetDirectories(Path.Combine(data, "blobs", "tenants")))));
        }

        Assert.NotEqual(ids[0], ids[1]);
        Assert.DoesNotContain(UnkeyedId(key), ids);
        Assert.All(ids, id => Assert.Matches("^t[0-9a-f]{32}$", id));
    }

    [Fact]
    public async Task A_data_folder_of_unkeyed_tenants_keeps_every_batch_and_file_for_its_owner_and_no_unkeyed_id()
    {
        var data = Path.Combine(_root, "data");
        CopyFolder(Path.Combine(Fixture, "blobs"), Path.Combine(data, "blobs"));

        for (var start = 1; start <= 2; start++) // the second start finds it done
        {
            var app = await StartAsync(data, KeyA, KeyB);
            using var a = Client(app, KeyA);
            using var b = Client(app, KeyB);

            var list = await Api.ReadAsync(await a.GetAsync("v1/batches"), 200);
            Assert.Equal([BatchA2, BatchA1], list.GetProperty("data").EnumerateArray().Select(j => j.GetProperty("id").GetString()));
            var batch = await Api.ReadAsync(await a.GetAsync($"v1/batches/{BatchA1}"), 200);
            Assert.Equal(("completed", "unkeyed", InputA1), (batch.GetProperty("status").GetString(),
                batch.GetProperty("metadata").GetProperty("written").GetString(), batch.GetProperty("input_file_id").GetString()));
            var output = await a.GetByteArrayAsync($"v1/files/{batch.GetProperty("output_file_id").GetString()}/content");
            Assert.Equal(File.ReadAllBytes(Path.Combine(Fixture, "blobs", "jobs", BatchA1, "output.jsonl")), output);
            foreach (var upload in new[] { InputA1, RefusedUploadA })
                Assert.Equal(HttpStatusCode.OK, (await a.GetAsync($"v1/files/{upload}/content")).StatusCode);
            Assert.Equal("hello there\n", await b.GetStringAsync($"v1/files/{UploadB}/content"));
            Assert.Empty((await Api.ReadAsync(await b.GetAsync("v1/batches"), 200)).GetProperty("data").EnumerateArray());
            // and each still sees only its own
            Assert.Equal(HttpStatusCode.NotFound, (await b.GetAsync($"v1/batches/{BatchA1}")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await a.GetAsync($"v1/files/{UploadB}")).StatusCode);
            await StopAsync(app);
            _apps.Remove(app);

            var onDisk = NamesAndContents(data);
            foreach (var unkeyed in new[] { UnkeyedId(KeyA), UnkeyedId(KeyB) }) Assert.DoesNotContain(unkeyed, onDisk);
            Assert.Equal(2, Directory.GetDirectories(Path.Combine(data, "blobs", "tenants")).Length);
        }
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}

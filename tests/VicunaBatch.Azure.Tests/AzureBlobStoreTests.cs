using System.Text;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Azure.Tests;

/// <summary><see cref="AzureBlobStore"/> against a real Azurite: conditions, ranges, listing, routing to containers.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class AzureBlobStoreTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly StorageContainerNames _containers = azurite.UniqueContainers();
    private AzureBlobStore _store = null!;

    public async Task InitializeAsync()
    {
        _store = new AzureBlobStore(azurite.Blobs, _containers);
        await _store.CreateContainersAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private Task<BlobProperties> PutAsync(string name, string text, BlobCondition condition) =>
        _store.PutBytesAsync(name, Encoding.UTF8.GetBytes(text), condition);

    private async Task<string> ReadAsync(string name) => Encoding.UTF8.GetString(await _store.ReadBytesAsync(name));

    [Fact]
    public async Task PutAsync_thenRead_returnsContentAndProperties()
    {
        var put = await PutAsync("jobs/j1/job.json", "hello", BlobCondition.None);
        var properties = await _store.GetPropertiesAsync("jobs/j1/job.json");

        Assert.Equal("hello", await ReadAsync("jobs/j1/job.json"));
        Assert.Equal(("jobs/j1/job.json", 5L), (put.Name, put.Length));
        Assert.Equal((put.ETag, 5L), (properties!.ETag, properties.Length));
    }

    [Fact]
    public async Task PutAsync_forwardOnlyStream_countsItsLength()
    {
        var put = await _store.PutAsync("jobs/j1/big.jsonl", new ForwardOnly(new byte[300_000]), BlobCondition.None);

        Assert.Equal(300_000, put.Length);
        Assert.Equal(300_000, (await _store.GetPropertiesAsync("jobs/j1/big.jsonl"))!.Length);
    }

    [Fact]
    public async Task PutAsync_createOnlyWhenExists_throwsConditionFailedAndKeepsContent()
    {
        await PutAsync("jobs/a.txt", "first", BlobCondition.IfNotExists);

        var e = await Assert.ThrowsAsync<BlobStoreException>(() => PutAsync("jobs/a.txt", "second", BlobCondition.IfNotExists));

        Assert.Equal(BlobStoreFailure.ConditionFailed, e.Reason);
        Assert.False(e.IsTransient);
        Assert.Equal("first", await ReadAsync("jobs/a.txt"));
    }

    [Fact]
    public async Task PutAsync_ifMatchCurrentETag_writesAndChangesETag()
    {
        var first = await PutAsync("a.txt", "first", BlobCondition.None);

        var second = await PutAsync("a.txt", "second!", BlobCondition.IfMatch(first.ETag));

        Assert.NotEqual(first.ETag, second.ETag);
        Assert.Equal("second!", await ReadAsync("a.txt"));
    }

    [Fact]
    public async Task PutAsync_ifMatchStaleETag_throwsConditionFailedAndKeepsTheWinner()
    {
        var first = await PutAsync("a.txt", "first", BlobCondition.None);
        await PutAsync("a.txt", "changed", BlobCondition.IfMatch(first.ETag));

        var e = await Assert.ThrowsAsync<BlobStoreException>(() => PutAsync("a.txt", "lost update", BlobCondition.IfMatch(first.ETag)));

        Assert.Equal(BlobStoreFailure.ConditionFailed, e.Reason);
        Assert.Equal("changed", await ReadAsync("a.txt"));
    }

    [Fact]
    public async Task PutAsync_ifMatchMissingBlob_throwsConditionFailed()
    {
        var e = await Assert.ThrowsAsync<BlobStoreException>(() => PutAsync("none.txt", "x", BlobCondition.IfMatch("\"0x8DC0000000000000\"")));

        Assert.Equal(BlobStoreFailure.ConditionFailed, e.Reason);
        Assert.Null(await _store.GetPropertiesAsync("none.txt"));
    }

    [Fact]
    public async Task PutAsync_concurrentCompareAndSwap_exactlyOneWins()
    {
        var start = await PutAsync("jobs/j/job.json", "v0", BlobCondition.None);

        var attempts = await Task.WhenAll(Enumerable.Range(1, 6).Select(async i =>
        {
            try { await PutAsync("jobs/j/job.json", $"v{i}", BlobCondition.IfMatch(start.ETag)); return i; }
            catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed) { return 0; }
        }));

        var winner = Assert.Single(attempts, i => i > 0);
        Assert.Equal($"v{winner}", await ReadAsync("jobs/j/job.json"));
    }

    [Theory]
    [InlineData("../outside.txt")]
    [InlineData("a//b")]
    [InlineData("a/./b")]
    [InlineData("a\\b")]
    [InlineData("/abs")]
    [InlineData("")]
    [InlineData("files")]
    public async Task PutAsync_badName_throwsInvalidName(string name)
    {
        var e = await Assert.ThrowsAsync<BlobStoreException>(() => PutAsync(name, "x", BlobCondition.None));

        Assert.Equal(BlobStoreFailure.InvalidName, e.Reason);
    }

    [Fact]
    public async Task OpenReadAsync_missingBlob_throwsNotFound()
    {
        var e = await Assert.ThrowsAsync<BlobStoreException>(() => _store.OpenReadAsync("jobs/none.json"));

        Assert.Equal((BlobStoreFailure.NotFound, "jobs/none.json"), (e.Reason, e.BlobName));
    }

    [Theory]
    [InlineData(0L, 4L, "0123")]
    [InlineData(4L, 3L, "456")]
    [InlineData(7L, null, "789")]
    [InlineData(8L, 100L, "89")]
    [InlineData(10L, null, "")]
    [InlineData(3L, 0L, "")]
    public async Task OpenReadAsync_range_readsExactlyThoseBytes(long offset, long? length, string expected)
    {
        await PutAsync("files/file-1/content.jsonl", "0123456789", BlobCondition.None);

        await using var stream = await _store.OpenReadAsync("files/file-1/content.jsonl", new BlobRange(offset, length));
        using var reader = new StreamReader(stream);

        Assert.Equal(expected, await reader.ReadToEndAsync());
    }

    [Fact]
    public async Task ListAsync_prefix_returnsMatchingNamesInOrdinalOrder()
    {
        foreach (var name in new[] { "jobs/b/2.json", "jobs/a/1.json", "jobs/B/0.json", "jobs/ab.json", "tenants/t/x.json", "files/file-9/content.jsonl" })
            await PutAsync(name, "x", BlobCondition.None);

        var names = await _store.ListAsync("jobs/").ToListAsync();
        var a = await _store.ListAsync("jobs/a").ToListAsync();
        var files = await _store.ListAsync("files/").ToListAsync();

        Assert.Equal(["jobs/B/0.json", "jobs/a/1.json", "jobs/ab.json", "jobs/b/2.json"], names);
        Assert.Equal(["jobs/a/1.json", "jobs/ab.json"], a);
        Assert.Equal(["files/file-9/content.jsonl"], files);
    }

    [Fact]
    public async Task ListAsync_prefixSpanningContainers_mergesInOrdinalOrder()
    {
        foreach (var name in new[] { "jobs/j/job.json", "files/file-1/content.jsonl", "inbox/drop.jsonl", "tenants/t/b.json", "a.txt" })
            await PutAsync(name, "x", BlobCondition.None);

        var all = await _store.ListAsync("").ToListAsync();
        var i = await _store.ListAsync("i").ToListAsync();

        Assert.Equal(["a.txt", "files/file-1/content.jsonl", "inbox/drop.jsonl", "jobs/j/job.json", "tenants/t/b.json"], all);
        Assert.Equal(["inbox/drop.jsonl"], i);
    }

    [Fact]
    public async Task PutAsync_routedNames_landInTheirRoleContainers()
    {
        await PutAsync("files/file-1/content.jsonl", "input", BlobCondition.None);
        await PutAsync("inbox/drop.jsonl", "dropped", BlobCondition.None);
        await PutAsync("jobs/j/job.json", "state", BlobCondition.None);

        Assert.True(await azurite.Blobs.GetBlobContainerClient(_containers.Inputs).GetBlobClient("file-1/content.jsonl").ExistsAsync());
        Assert.True(await azurite.Blobs.GetBlobContainerClient(_containers.Inbox).GetBlobClient("drop.jsonl").ExistsAsync());
        Assert.True(await azurite.Blobs.GetBlobContainerClient(_containers.Jobs).GetBlobClient("jobs/j/job.json").ExistsAsync());
    }

    [Fact]
    public async Task DeleteAsync_existingThenMissing_returnsTrueThenFalse()
    {
        await PutAsync("jobs/x.json", "x", BlobCondition.None);

        Assert.True(await _store.DeleteAsync("jobs/x.json"));
        Assert.False(await _store.DeleteAsync("jobs/x.json"));
        Assert.Null(await _store.GetPropertiesAsync("jobs/x.json"));
    }

    [Fact]
    public async Task PutAsync_missingContainer_throwsNotFound()
    {
        var store = new AzureBlobStore(azurite.Blobs, azurite.UniqueContainers()); // containers never created

        var e = await Assert.ThrowsAsync<BlobStoreException>(() => store.PutBytesAsync("jobs/x.json", [1], BlobCondition.None));

        Assert.Equal(BlobStoreFailure.NotFound, e.Reason);
        Assert.Empty(await store.ListAsync("jobs/").ToListAsync());
    }

    [Fact]
    public async Task Calls_serviceDown_throwTransientUnavailable()
    {
        var down = new global::Azure.Storage.Blobs.BlobServiceClient(new Uri("http://127.0.0.1:9/devstoreaccount1"),
            new global::Azure.Storage.Blobs.BlobClientOptions { Retry = { MaxRetries = 0, NetworkTimeout = TimeSpan.FromSeconds(2) } });
        var store = new AzureBlobStore(down, _containers);

        var e = await Assert.ThrowsAsync<BlobStoreException>(() => store.GetPropertiesAsync("jobs/x.json"));

        Assert.Equal(BlobStoreFailure.Unavailable, e.Reason);
        Assert.True(e.IsTransient);
    }

    /// <summary>A stream that cannot seek (an HTTP request body).</summary>
    private sealed class ForwardOnly(byte[] content) : Stream
    {
        private readonly MemoryStream _inner = new(content);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Local.Tests.Files;

/// <summary>
/// Issue 23: a tenant's files listed as OpenAI lists them — by creation, newest first or oldest first, in pages that an
/// <c>after</c> cursor continues — over the real folder store, with the clock in the test's hands.
/// </summary>
public sealed class FileListingTests : IDisposable
{
    private const string Owner = "tenant-1";
    private readonly LocalRig _rig = new();
    private readonly FileCatalog _files;

    public FileListingTests() => _files = new FileCatalog(_rig.Blobs, _rig.Time);

    public void Dispose() => _rig.Dispose();

    /// <summary>Uploads <paramref name="count"/> files a second apart; their ids, oldest first.</summary>
    private async Task<List<string>> UploadAsync(int count, string owner = Owner, long? expiresAfter = null)
    {
        var ids = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var file = await _files.UploadAsync(owner, FilePurpose.Batch, $"in{i}.jsonl", new MemoryStream(Encoding.UTF8.GetBytes("{\"prompt\":\"x\"}\n")), expiresAfter);
            ids.Add(file.Id);
            _rig.Time.Advance(TimeSpan.FromSeconds(1));
        }
        return ids;
    }

    private async Task<(List<string> Ids, List<bool> HasMore)> PageThroughAsync(int limit, bool ascending, string? purpose = null)
    {
        var (ids, hasMore) = (new List<string>(), new List<bool>());
        string? after = null;
        while (true)
        {
            var page = await _files.ListAsync(Owner, purpose, after, limit, ascending);
            ids.AddRange(page.Items.Select(f => f.Id));
            hasMore.Add(page.HasMore);
            if (!page.HasMore) return (ids, hasMore);
            after = page.Items[^1].Id;
        }
    }

    [Fact]
    public async Task ListAsync_pagesOfTwo_giveEveryFileOnceNewestFirst()
    {
        var ids = await UploadAsync(5);

        var (listed, hasMore) = await PageThroughAsync(limit: 2, ascending: false);

        Assert.Equal(Enumerable.Reverse(ids), listed);
        Assert.Equal([true, true, false], hasMore);
    }

    [Fact]
    public async Task ListAsync_ascending_givesEveryFileOnceOldestFirst()
    {
        var ids = await UploadAsync(5);

        var (listed, hasMore) = await PageThroughAsync(limit: 2, ascending: true);

        Assert.Equal(ids, listed);
        Assert.Equal([true, true, false], hasMore);
    }

    [Fact]
    public async Task ListAsync_limitAsLargeAsTheList_hasNoMore()
    {
        var ids = await UploadAsync(3);

        var page = await _files.ListAsync(Owner, null, null, 3, ascending: false);

        Assert.Equal(Enumerable.Reverse(ids), page.Items.Select(f => f.Id));
        Assert.False(page.HasMore);
    }

    [Fact]
    public async Task ListAsync_anotherTenantsFilesAndOtherPurposes_areNotListed()
    {
        var mine = await UploadAsync(2);
        await UploadAsync(2, owner: "tenant-2");

        Assert.Equal(Enumerable.Reverse(mine), (await _files.ListAsync(Owner, null, null, 10, false)).Items.Select(f => f.Id));
        Assert.Equal(Enumerable.Reverse(mine), (await _files.ListAsync(Owner, "batch", null, 10, false)).Items.Select(f => f.Id));
        Assert.Empty((await _files.ListAsync(Owner, "batch_output", null, 10, false)).Items);
        Assert.Empty((await _files.ListAsync(Owner, null, mine[0], 10, false)).Items); // nothing older than the oldest
        Assert.Empty((await _files.ListAsync("tenant-2", null, mine[1], 10, false)).Items); // another tenant's cursor
    }

    [Fact]
    public async Task ListAsync_deletedAndExpiredFiles_areLeftOutBeforeAnySweep()
    {
        var ids = await UploadAsync(3, expiresAfter: null);
        var brief = (await UploadAsync(1, expiresAfter: FileExpiry.MinSeconds))[0];
        Assert.True(await _files.DeleteAsync(Owner, ids[1]));
        _rig.Time.Advance(TimeSpan.FromSeconds(FileExpiry.MinSeconds));

        var page = await _files.ListAsync(Owner, null, null, 10, ascending: true);

        Assert.Equal([ids[0], ids[2]], page.Items.Select(f => f.Id));
        Assert.Null(await _files.GetAsync(Owner, brief));
        Assert.Null(await _files.GetAsync(Owner, ids[1]));
        Assert.False(await _files.DeleteAsync(Owner, ids[1])); // gone: a second delete finds nothing
    }

    [Fact]
    public async Task ListAsync_filesStoredBeforeListings_areListedOnceBackfilled()
    {
        // a file as versions before listings stored it: metadata only, no listing entry, no CreatedTicks or expires_at
        const string oldId = "file-0123456789abcdef0123456789abcdef";
        await _rig.Blobs.PutBytesAsync(FileIds.ContentBlob(oldId, "old.jsonl"), Encoding.UTF8.GetBytes("{\"prompt\":\"x\"}\n"), BlobCondition.None);
        await _rig.Blobs.PutBytesAsync(FileIds.MetadataBlob(oldId), Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new
        {
            id = oldId, owner = Owner, purpose = "batch", filename = "old.jsonl", bytes = 15, created_at = LocalRig.Start.ToUnixTimeSeconds() - 60,
            blob = FileIds.ContentBlob(oldId, "old.jsonl"),
        })), BlobCondition.None);
        var ids = await UploadAsync(1);

        var page = await _files.ListAsync(Owner, null, null, 10, ascending: false);

        Assert.Equal([ids[0], oldId], page.Items.Select(f => f.Id));
        Assert.Null(page.Items[1].ExpiresAt); // it never expires, as when it was stored
        Assert.True(await _rig.Blobs.ExistsAsync(FileIds.ListingsBackfilledBlob));
    }

    [Fact]
    public async Task UploadAsync_batchFileWithoutPolicy_expiresAfterOpenAisThirtyDays()
    {
        var file = await _files.UploadAsync(Owner, FilePurpose.Batch, "in.jsonl", new MemoryStream([(byte)'\n']));
        var brief = await _files.UploadAsync(Owner, FilePurpose.Batch, "in.jsonl", new MemoryStream([(byte)'\n']), expiresAfterSeconds: 7200);

        Assert.Equal(LocalRig.Start.ToUnixTimeSeconds() + 30 * 86_400, file.ExpiresAt);
        Assert.Equal(LocalRig.Start.ToUnixTimeSeconds() + 7200, brief.ExpiresAt);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            _files.UploadAsync(Owner, FilePurpose.Batch, "in.jsonl", new MemoryStream([(byte)'\n']), expiresAfterSeconds: 3599));
    }
}

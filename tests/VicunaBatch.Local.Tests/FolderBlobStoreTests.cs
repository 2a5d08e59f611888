using System.Text;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Local.Tests;

public sealed class FolderBlobStoreTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly FolderBlobStore _store;

    public FolderBlobStoreTests() => _store = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _folder.Path });

    public void Dispose() => _folder.Dispose();

    private Task<BlobProperties> PutAsync(string name, string text, BlobCondition condition) =>
        _store.PutBytesAsync(name, Encoding.UTF8.GetBytes(text), condition);

    [Fact]
    public async Task PutAsync_thenRead_returnsContentAndProperties()
    {
        var properties = await PutAsync("jobs/j1/job.json", "hello", BlobCondition.None);

        Assert.Equal("hello", Encoding.UTF8.GetString(await _store.ReadBytesAsync("jobs/j1/job.json")));
        Assert.Equal(("jobs/j1/job.json", 5L), (properties.Name, properties.Length));
        Assert.True(File.Exists(Path.Combine(_folder.Path, "jobs", "j1", "job.json")));
        Assert.Empty(Directory.GetFiles(Path.Combine(_folder.Path, ".tmp")));
    }

    [Fact]
    public async Task A_store_that_is_only_read_leaves_its_folder_as_it_was()
    {
        var root = Path.Combine(_folder.Path, "source");
        Directory.CreateDirectory(Path.Combine(root, "notes"));
        File.WriteAllText(Path.Combine(root, "notes", "a.txt"), "text");
        var source = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = root });

        Assert.Equal(["notes/a.txt"], await source.ListAsync("").ToListAsync());
        Assert.Equal("text", Encoding.UTF8.GetString(await source.ReadBytesAsync("notes/a.txt")));
        Assert.NotNull(await source.GetPropertiesAsync("notes/a.txt"));

        Assert.Equal([Path.Combine(root, "notes"), Path.Combine(root, "notes", "a.txt")],
            Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(_folder.Path, "missing")));
        Assert.Empty(await new FolderBlobStore(new FolderBlobStoreOptions { RootPath = Path.Combine(_folder.Path, "missing") }).ListAsync("").ToListAsync());
        Assert.False(Directory.Exists(Path.Combine(_folder.Path, "missing")), "listing a missing folder made it");
    }

    [Fact]
    public async Task With_a_TempPath_writes_in_progress_stay_out_of_the_root()
    {
        var root = Path.Combine(_folder.Path, "summaries");
        var temp = Path.Combine(_folder.Path, "state", "tmp");
        var store = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = root, TempPath = temp });

        await store.PutBytesAsync("a/b.md", Encoding.UTF8.GetBytes("one"), BlobCondition.None);
        await store.PutBytesAsync("a/b.md", Encoding.UTF8.GetBytes("two"), BlobCondition.None);

        Assert.Equal("two", File.ReadAllText(Path.Combine(root, "a", "b.md")));
        Assert.Equal([Path.Combine(root, "a")], Directory.EnumerateDirectories(root));
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp));
    }

    [UnixFact]
    public async Task By_default_files_and_folders_get_the_modes_of_the_umask()
    {
        // a pipeline's output folder is its user's: its summaries keep the modes the user's other files get
        await PutAsync("a/b/c.md", "summary", BlobCondition.None);

        Assert.Equal(UnixModes.OfNewFolder(), UnixModes.Of(Path.Combine(_folder.Path, "a", "b")));
        Assert.Equal(UnixModes.OfNewFile(), UnixModes.Of(Path.Combine(_folder.Path, "a", "b", "c.md")));
    }

    [Fact]
    public async Task PutAsync_createOnlyWhenExists_throwsConditionFailedAndKeepsContent()
    {
        await PutAsync("a.txt", "first", BlobCondition.IfNotExists);

        var e = await Assert.ThrowsAsync<BlobStoreException>(() => PutAsync("a.txt", "second", BlobCondition.IfNotExists));

        Assert.Equal(BlobStoreFailure.ConditionFailed, e.Reason);
        Assert.Equal("first", Encoding.UTF8.GetString(await _store.ReadBytesAsync("a.txt")));
    }

    [Fact]
    public async Task PutAsync_ifMatchCurrentETag_writes()
    {
        var first = await PutAsync("a.txt", "first", BlobCondition.None);

        var second = await PutAsync("a.txt", "second!", BlobCondition.IfMatch(first.ETag));

        Assert.NotEqual(first.ETag, second.ETag);
        Assert.Equal("second!", Encoding.UTF8.GetString(await _store.ReadBytesAsync("a.txt")));
    }

    [Fact]
    public async Task PutAsync_ifMatchStaleETag_throwsConditionFailed()
    {
        var first = await PutAsync("a.txt", "first", BlobCondition.None);
        await PutAsync("a.txt", "changed", BlobCondition.IfMatch(first.ETag));

        var e = await Assert.ThrowsAsync<BlobStoreException>(() => PutAsync("a.txt", "lost update", BlobCondition.IfMatch(first.ETag)));

        Assert.Equal(BlobStoreFailure.ConditionFailed, e.Reason);
        Assert.Equal("changed", Encoding.UTF8.GetString(await _store.ReadBytesAsync("a.txt")));
    }

    [Fact]
    public async Task PutAsync_ifMatchMissingBlob_throwsConditionFailed()
    {
        var e = await Assert.ThrowsAsync<BlobStoreException>(() => PutAsync("none.txt", "x", BlobCondition.IfMatch("\"1\"")));

        Assert.Equal(BlobStoreFailure.ConditionFailed, e.Reason);
    }

    [Theory]
    [InlineData("../outside.txt")]
    [InlineData("a/../../outside.txt")]
    [InlineData("/etc/passwd")]
    [InlineData("a//b")]
    [InlineData("a/./b")]
    [InlineData("a\\b")]
    [InlineData("")]
    [InlineData(".tmp/x")]
    public async Task PutAsync_badName_throwsInvalidName(string name)
    {
        var e = await Assert.ThrowsAsync<BlobStoreException>(() => PutAsync(name, "x", BlobCondition.None));

        Assert.Equal(BlobStoreFailure.InvalidName, e.Reason);
        Assert.StartsWith($"invalid blob name \"{name}\"", e.Message);
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(_folder.Path)!, "outside.txt")));
    }

    [Fact]
    public async Task OpenReadAsync_missing_throwsNotFound()
    {
        var e = await Assert.ThrowsAsync<BlobStoreException>(() => _store.OpenReadAsync("nope.txt"));

        Assert.Equal(BlobStoreFailure.NotFound, e.Reason);
        Assert.Null(await _store.GetPropertiesAsync("nope.txt"));
        Assert.False(await _store.ExistsAsync("nope.txt"));
    }

    [Fact]
    public async Task OpenReadAsync_range_returnsExactlyThoseBytes()
    {
        await PutAsync("a.txt", "0123456789", BlobCondition.None);

        await using var stream = await _store.OpenReadAsync("a.txt", new BlobRange(3, 4));
        var text = await new StreamReader(stream).ReadToEndAsync();

        Assert.Equal("3456", text);
    }

    [Fact]
    public async Task ListAsync_prefix_returnsMatchingNamesInOrder()
    {
        foreach (var name in new[] { "jobs/j1/shards/000001.json", "jobs/j1/shards/000000.json", "jobs/j1/job.json", "jobs/j2/job.json" })
            await PutAsync(name, "x", BlobCondition.None);
        await PutAsync("jobs/j1/job.json", "y", BlobCondition.IfMatch((await _store.GetPropertiesAsync("jobs/j1/job.json"))!.ETag));

        var names = new List<string>();
        await foreach (var name in _store.ListAsync("jobs/j1/")) names.Add(name);

        Assert.Equal(["jobs/j1/job.json", "jobs/j1/shards/000000.json", "jobs/j1/shards/000001.json"], names);
    }

    [Fact]
    public async Task DeleteAsync_removes_the_folders_it_leaves_empty_and_a_write_makes_them_again()
    {
        await PutAsync("tenants/t1/batches/e1", "", BlobCondition.IfNotExists);
        await PutAsync("tenants/t2/batches/e2", "", BlobCondition.IfNotExists);

        Assert.True(await _store.DeleteAsync("tenants/t1/batches/e1"));

        // as in a blob container: a name that held a blob names nothing once it is gone; the root and full folders stay
        Assert.False(Directory.Exists(Path.Combine(_folder.Path, "tenants", "t1")));
        Assert.True(File.Exists(Path.Combine(_folder.Path, "tenants", "t2", "batches", "e2")));
        Assert.True(await _store.DeleteAsync("tenants/t2/batches/e2"));
        Assert.False(Directory.Exists(Path.Combine(_folder.Path, "tenants")));
        Assert.True(Directory.Exists(_folder.Path));
        await PutAsync("tenants/t1/batches/e1", "", BlobCondition.IfNotExists);
        Assert.Equal(["tenants/t1/batches/e1"], await _store.ListAsync("tenants/").ToListAsync());
    }

    [Fact]
    public async Task DeleteAsync_existingThenMissing_trueThenFalse()
    {
        await PutAsync("a.txt", "x", BlobCondition.None);

        Assert.True(await _store.DeleteAsync("a.txt"));
        Assert.False(await _store.DeleteAsync("a.txt"));
    }

    [Fact]
    public async Task PutAsync_whileDeletesEmptyTheSameFolder_neverFails()
    {
        // one writer puts and deletes a blob over and over, another puts into the same folder: a folder removed by a
        // delete between a put's making it and its rename is made again
        var stop = DateTime.UtcNow.AddSeconds(2);
        var churn = Task.Run(async () =>
        {
            while (DateTime.UtcNow < stop)
            {
                await PutAsync("jobs/j1/a.json", "a", BlobCondition.None);
                await _store.DeleteAsync("jobs/j1/a.json");
            }
        });
        int i = 0;
        while (DateTime.UtcNow < stop)
        {
            await PutAsync($"jobs/j1/b{i}.json", "b", BlobCondition.None);
            await _store.DeleteAsync($"jobs/j1/b{i++}.json");
        }
        await churn;
        Assert.Empty(await _store.ListAsync("jobs/").ToListAsync());
    }
}

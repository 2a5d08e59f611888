using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Testing;

namespace VicunaBatch.Local.Tests;

/// <summary>
/// <see cref="TenantRename"/> over the data folder of tests/data/unkeyed-tenants (written by the version with unkeyed
/// tenant ids), on the real folder store: whole, idempotent, and finished by the next run wherever a run stops.
/// </summary>
public sealed class TenantRenameTests : IDisposable
{
    private static readonly string Fixture = Path.Combine(Checkout.Root, "tests", "data", "unkeyed-tenants", "blobs");
    private static readonly string FromA = Unkeyed("key-old-tenant-a1");
    private static readonly string FromB = Unkeyed("key-old-tenant-b2");
    private const string ToA = "t0123456789abcdef0123456789abcdea";
    private const string ToB = "t0123456789abcdef0123456789abcdeb";
    private static readonly TenantRenaming[] Renamings = [new(FromA, ToA), new(FromB, ToB)];
    private static readonly string[] JobsOfA = ["batch_6d48ee74bfe445feabc9cb3c7b2bf507", "batch_c769bf3a702c4cb0b209932475ef9eda"];
    private const string UploadOfB = "file-08a6dd8360c140eca4349ba1feb2d175";
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static string Unkeyed(string key) => "t" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..32];

    /// <summary>A copy of the fixture's blobs in folder <paramref name="name"/> and a store over it.</summary>
    private FolderBlobStore CopyOfFixture(string name)
    {
        var root = _folder.Combine(name);
        foreach (var file in Directory.EnumerateFiles(Fixture, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(root, Path.GetRelativePath(Fixture, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return new FolderBlobStore(new FolderBlobStoreOptions { RootPath = root, FlushToDisk = false });
    }

    private TenantRename RenameOver(IBlobStore blobs)
    {
        var jobs = new BlobJobStore(blobs);
        var queue = new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = _folder.Combine($"{Guid.NewGuid():N}.db") }, TimeProvider.System);
        var submitter = new JobSubmitter(blobs, jobs, new SharedWorkQueue(queue), LocalRig.Models, new InputOptions(), TimeProvider.System);
        return new TenantRename(blobs, new TenantBatches(blobs, jobs, submitter, TimeProvider.System), new FileCatalog(blobs, TimeProvider.System));
    }

    [Fact]
    public async Task RunAsync_gives_every_batch_and_file_its_new_owner_and_leaves_nothing_of_the_old_id()
    {
        var blobs = CopyOfFixture("data");

        var result = await RenameOver(blobs).RunAsync(Renamings);

        Assert.Equal(new TenantRenameResult(NumTenants: 2, NumBatches: 2, NumFiles: 8), result);
        await AssertRenamedAsync(blobs);
    }

    [Fact]
    public async Task RunAsync_again_reads_only_the_markers()
    {
        var blobs = CopyOfFixture("data");
        await RenameOver(blobs).RunAsync(Renamings);
        var counting = new DyingBlobStore(blobs, int.MaxValue);

        var again = await RenameOver(counting).RunAsync(Renamings);

        Assert.Equal(new TenantRenameResult(0, 0, 0), again);
        Assert.Equal((0, 0), (counting.NumWrites, counting.NumLists));
        await AssertRenamedAsync(blobs);
    }

    [Fact]
    public async Task A_run_stopped_before_any_one_of_its_writes_is_finished_by_the_next()
    {
        var counting = new DyingBlobStore(CopyOfFixture("count"), int.MaxValue);
        await RenameOver(counting).RunAsync(Renamings);
        // per batch: its record, its new entry, the old one deleted; per file (8): its new listing entry, the old one deleted,
        // its record; 2 markers
        Assert.Equal(2 * 3 + 8 * 3 + 2, counting.NumWrites);

        for (var numWrites = 0; numWrites < counting.NumWrites; numWrites++)
        {
            var blobs = CopyOfFixture($"stopped-{numWrites}");
            await Assert.ThrowsAsync<ProcessDiedException>(() => RenameOver(new DyingBlobStore(blobs, numWrites)).RunAsync(Renamings));

            await RenameOver(blobs).RunAsync(Renamings);

            await AssertRenamedAsync(blobs);
        }
    }

    [Fact]
    public async Task A_job_file_registered_for_the_old_id_meanwhile_is_given_to_the_jobs_owner()
    {
        // a finalizer read the record just before the rename changed it, and registered the output after the files' pass
        var blobs = CopyOfFixture("data");
        var jobId = JobsOfA[0];
        var outputId = FileIds.ForJobFile(jobId, "output");
        await RenameOver(blobs).RunAsync(Renamings);
        var stale = JsonSerializer.Deserialize<JsonElement>(await blobs.ReadBytesAsync(FileIds.MetadataBlob(outputId)));
        await blobs.PutBytesAsync(FileIds.MetadataBlob(outputId), Encoding.UTF8.GetBytes(stale.GetRawText().Replace(ToA, FromA)), BlobCondition.None);
        var files = new FileCatalog(blobs, TimeProvider.System);
        Assert.Null(await files.GetAsync(ToA, outputId));

        var registered = await files.RegisterJobFileAsync(ToA, jobId, "output", $"jobs/{jobId}/output.jsonl");

        Assert.Equal((outputId, ToA), (registered!.Id, registered.Owner));
        Assert.NotNull(await files.GetAsync(ToA, outputId));
    }

    private static async Task AssertRenamedAsync(FolderBlobStore blobs)
    {
        // not a folder either: the store prunes the folders its deletes leave empty
        var folders = Directory.EnumerateDirectories(Path.GetDirectoryName(blobs.PathOf("x"))!, "*", SearchOption.AllDirectories);
        Assert.DoesNotContain(folders, f => f.Contains(FromA) || f.Contains(FromB));
        var names = await blobs.ListAsync("").ToListAsync();
        foreach (var name in names)
        {
            Assert.DoesNotContain(FromA, name);
            Assert.DoesNotContain(FromB, name);
            var text = Encoding.UTF8.GetString(await blobs.ReadBytesAsync(name));
            Assert.False(text.Contains(FromA) || text.Contains(FromB), $"{name} names an old tenant id");
        }
        Assert.Equal(JobsOfA.Order(StringComparer.Ordinal),
            (await blobs.ListAsync(BatchRecord.IndexPrefix(ToA)).ToListAsync()).Select(BatchRecord.JobIdOfIndexBlob).Order(StringComparer.Ordinal));
        var files = new FileCatalog(blobs, TimeProvider.System);
        foreach (var jobId in JobsOfA)
        {
            Assert.Contains($"\"owner\":\"{ToA}\"", Encoding.UTF8.GetString(await blobs.ReadBytesAsync(BatchRecord.Blob(jobId))));
            Assert.NotNull(await files.GetAsync(ToA, FileIds.ForJobFile(jobId, "output")));
        }
        Assert.NotNull(await files.GetAsync(ToB, UploadOfB));
        // each file renamed is in its new owner's listing (written by the rename itself, not by a later backfill)
        Assert.Contains(UploadOfB, (await blobs.ListAsync(FileIds.ListingPrefix(ToB)).ToListAsync()).Select(n => FileIds.OfListingBlob(n)!.Value.FileId));
        Assert.Contains(FileIds.ForJobFile(JobsOfA[0], "output"),
            (await blobs.ListAsync(FileIds.ListingPrefix(ToA)).ToListAsync()).Select(n => FileIds.OfListingBlob(n)!.Value.FileId));
        Assert.True(await blobs.ExistsAsync(TenantRename.DoneBlob(ToA)) && await blobs.ExistsAsync(TenantRename.DoneBlob(ToB)));
    }
}

/// <summary>Stands for a process killed at a write: thrown where none of the code under test catches it.</summary>
internal sealed class ProcessDiedException() : Exception("the process died here");

/// <summary>The real store, counting writes (puts and deletes) and lists, that dies (<see cref="ProcessDiedException"/>) at the write after <c>numWrites</c>.</summary>
internal sealed class DyingBlobStore(IBlobStore inner, int numWrites) : IBlobStore
{
    private int _numLeft = numWrites;

    public int NumWrites { get; private set; }

    public int NumLists { get; private set; }

    public Task<BlobProperties> PutAsync(string name, Stream content, BlobCondition condition, CancellationToken cancellationToken = default)
    {
        Write();
        return inner.PutAsync(name, content, condition, cancellationToken);
    }

    public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        Write();
        return inner.DeleteAsync(name, cancellationToken);
    }

    public Task<Stream> OpenReadAsync(string name, BlobRange? range = null, CancellationToken cancellationToken = default) => inner.OpenReadAsync(name, range, cancellationToken);

    public Task<BlobProperties?> GetPropertiesAsync(string name, CancellationToken cancellationToken = default) => inner.GetPropertiesAsync(name, cancellationToken);

    public IAsyncEnumerable<string> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        NumLists++;
        return inner.ListAsync(prefix, cancellationToken);
    }

    private void Write()
    {
        if (_numLeft-- <= 0) throw new ProcessDiedException();
        NumWrites++;
    }
}

using Microsoft.Extensions.Logging.Abstractions;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Local;

namespace VicunaBatch.Api.Tests;

/// <summary><see cref="TenantMigration"/>'s one run per process, on a real folder store.</summary>
public sealed class TenantMigrationTests : IDisposable
{
    private const string Key = "key-migration-0001";
    private readonly string _root = Directory.CreateTempSubdirectory("vicuna-migration-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task A_run_that_failed_fails_the_requests_waiting_and_the_next_request_runs_it_again()
    {
        var blobs = new OutageBlobStore(new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _root, FlushToDisk = false }), numFailures: 1);
        var options = new ApiOptions { TenantKey = new string('k', ApiOptions.MinTenantKeyLength) };
        options.ApiKeys.Add(Key);
        var ids = new TenantIds(options.TenantKey);
        var jobs = new BlobJobStore(blobs);
        var queue = new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = Path.Combine(_root, "queue.db") }, TimeProvider.System);
        var batches = new TenantBatches(blobs, jobs, new JobSubmitter(blobs, jobs, new SharedWorkQueue(queue), new ServedModels(["tiny"]), new InputOptions(), TimeProvider.System), TimeProvider.System);
        var migration = new TenantMigration(options, ids, new TenantRename(blobs, batches, new FileCatalog(blobs, TimeProvider.System)),
            NullLogger<TenantMigration>.Instance);

        var e = await Assert.ThrowsAsync<BlobStoreException>(() => migration.WaitAsync());
        Assert.True(e.IsTransient);
        await migration.WaitAsync();
        await migration.WaitAsync(); // done: nothing read again

        Assert.Equal(2, blobs.NumReads); // the failed read of the marker, then the one that found none
        Assert.True(await blobs.ExistsAsync(TenantRename.DoneBlob(ids.Of(Key))));
    }

    /// <summary>The real store, whose first <c>numFailures</c> property reads fail as unavailable; counts them all.</summary>
    private sealed class OutageBlobStore(IBlobStore inner, int numFailures) : IBlobStore
    {
        private int _numLeft = numFailures;

        public int NumReads { get; private set; }

        public Task<BlobProperties?> GetPropertiesAsync(string name, CancellationToken cancellationToken = default)
        {
            NumReads++;
            return _numLeft-- > 0
                ? throw new BlobStoreException(BlobStoreFailure.Unavailable, name, $"could not read {name}: injected outage")
                : inner.GetPropertiesAsync(name, cancellationToken);
        }

        public Task<BlobProperties> PutAsync(string name, Stream content, BlobCondition condition, CancellationToken cancellationToken = default) =>
            inner.PutAsync(name, content, condition, cancellationToken);

        public Task<Stream> OpenReadAsync(string name, BlobRange? range = null, CancellationToken cancellationToken = default) => inner.OpenReadAsync(name, range, cancellationToken);

        public IAsyncEnumerable<string> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);

        public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default) => inner.DeleteAsync(name, cancellationToken);
    }
}

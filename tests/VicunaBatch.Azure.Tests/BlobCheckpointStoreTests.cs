using System.Text;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Blobs;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Azure.Tests;

/// <summary><see cref="BlobCheckpointStore"/> (append blobs) against a real Azurite.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class BlobCheckpointStoreTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly BlobContainerClient _container = azurite.Blobs.GetBlobContainerClient(azurite.UniqueName("results"));

    public async Task InitializeAsync() => await _container.CreateAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private BlobCheckpointStore Store(int blocksPerBlob = BlobCheckpointStore.MaxBlocksPerAppendBlob) => new(_container, blocksPerBlob);

    private static RequestOutcome Outcome(string id, int line, bool succeeded = true) => new()
    {
        CustomId = id, LineNumber = line, Endpoint = BatchEndpoint.Completions, CreatedAt = 1_700_000_000,
        Model = succeeded ? "m" : null, Text = succeeded ? "t" : null, FinishReason = succeeded ? FinishReason.Stop : null,
        PromptTokens = 1, CompletionTokens = 2,
        ErrorCode = succeeded ? null : RequestErrorCode.ExecutionFailed, ErrorMessage = succeeded ? null : "boom",
    };

    [Fact]
    public async Task AppendAsync_thenRead_returnsOutcomesInAppendOrder()
    {
        var store = Store();
        await store.AppendAsync("job1", 0, Outcome("a", 1));
        await store.AppendAsync("job1", 0, Outcome("b", 2));

        Assert.Equal([Outcome("a", 1), Outcome("b", 2)], await store.ReadShardAsync("job1", 0).ToListAsync());
        Assert.Equal(["a", "b"], (await store.GetDoneCustomIdsAsync("job1", 0)).Order());
        Assert.True(await _container.GetBlobClient("job1/000000.0000.jsonl").ExistsAsync());
    }

    [Fact]
    public async Task ReadShardAsync_nothingAppended_isEmpty()
    {
        Assert.Empty(await Store().ReadShardAsync("job1", 5).ToListAsync());
        Assert.Empty(await Store().GetDoneCustomIdsAsync("job1", 5));
    }

    [Fact]
    public async Task AppendAsync_sameRequestTwiceFromTwoWorkers_readersSeeBothAndDeduplicate()
    {
        // a lock lost mid-shard: the redelivered shard runs on a second worker while the first still appends
        var first = Store();
        var second = Store();
        await Task.WhenAll(
            first.AppendAsync("job1", 0, Outcome("a", 1, succeeded: false)),
            second.AppendAsync("job1", 0, Outcome("a", 1)),
            second.AppendAsync("job1", 0, Outcome("b", 2)));

        var read = await first.ReadShardAsync("job1", 0).ToListAsync();
        var kept = await OutcomeDeduplication.DeduplicateAsync(first.ReadShardAsync("job1", 0));

        Assert.Equal(3, read.Count);
        Assert.Equal([Outcome("a", 1), Outcome("b", 2)], kept);
    }

    [Fact]
    public async Task AppendAsync_manyConcurrent_everyLineWholeOnce()
    {
        var store = Store();

        await Task.WhenAll(Enumerable.Range(1, 40).Select(i => store.AppendAsync("job1", 2, Outcome($"r{i}", i))));

        var read = await store.ReadShardAsync("job1", 2).ToListAsync();
        Assert.Equal(Enumerable.Range(1, 40).Select(i => $"r{i}").Order(), read.Select(o => o.CustomId).Order());
    }

    [Fact]
    public async Task AppendAsync_segmentFull_rollsOverAndReadsAcrossSegments()
    {
        var store = Store(blocksPerBlob: 2);
        for (int i = 1; i <= 5; i++) await store.AppendAsync("job1", 0, Outcome($"r{i}", i));

        var names = await _container.GetBlobsAsync(new global::Azure.Storage.Blobs.Models.GetBlobsOptions { Prefix = "job1/" }).Select(b => b.Name).ToListAsync();

        Assert.Equal(["job1/000000.0000.jsonl", "job1/000000.0001.jsonl", "job1/000000.0002.jsonl"], names);
        Assert.Equal(["r1", "r2", "r3", "r4", "r5"], (await store.ReadShardAsync("job1", 0).ToListAsync()).Select(o => o.CustomId));
        // a new process finds the last segment and keeps appending there
        await Store(blocksPerBlob: 2).AppendAsync("job1", 0, Outcome("r6", 6));
        Assert.Equal(3, await _container.GetBlobsAsync(new global::Azure.Storage.Blobs.Models.GetBlobsOptions { Prefix = "job1/" }).CountAsync());
        Assert.Equal("r6", (await store.ReadShardAsync("job1", 0).ToListAsync())[^1].CustomId);
    }

    [Fact]
    public async Task ReadJobAsync_severalShards_inShardOrder()
    {
        var store = Store();
        await store.AppendAsync("job1", 10, Outcome("k", 700));
        await store.AppendAsync("job1", 2, Outcome("c", 130));
        await store.AppendAsync("job1", 0, Outcome("a", 1));
        await store.AppendAsync("job2", 0, Outcome("other", 1));

        Assert.Equal(["a", "c", "k"], (await store.ReadJobAsync("job1").ToListAsync()).Select(o => o.CustomId));
    }

    [Fact]
    public async Task ReadShardAsync_corruptLineWrittenAroundTheStore_skipped()
    {
        var store = Store();
        await store.AppendAsync("job1", 0, Outcome("a", 1));
        await _container.GetAppendBlobClient("job1/000000.0000.jsonl").AppendBlockAsync(new MemoryStream(Encoding.UTF8.GetBytes("{\"custom_id\":\"b\",\"li\n")));
        await store.AppendAsync("job1", 0, Outcome("c", 3));

        Assert.Equal(["a", "c"], (await store.ReadShardAsync("job1", 0).ToListAsync()).Select(o => o.CustomId));
    }

    [Fact]
    public async Task AppendAsync_invalidJobId_throwsInvalidName()
    {
        var e = await Assert.ThrowsAsync<CheckpointStoreException>(() => Store().AppendAsync("../x", 0, Outcome("a", 1)));

        Assert.Equal(CheckpointStoreFailure.InvalidName, e.Reason);
    }

    [Fact]
    public async Task AppendAsync_missingContainer_throwsUnavailable()
    {
        var store = new BlobCheckpointStore(azurite.Blobs.GetBlobContainerClient(azurite.UniqueName("results")));

        var e = await Assert.ThrowsAsync<CheckpointStoreException>(() => store.AppendAsync("job1", 0, Outcome("a", 1)));

        Assert.Equal(CheckpointStoreFailure.Unavailable, e.Reason);
    }
}

using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Local.Tests;

public sealed class FolderCheckpointStoreTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly FolderCheckpointStore _store;

    public FolderCheckpointStoreTests() => _store = new FolderCheckpointStore(new FolderCheckpointStoreOptions { RootPath = _folder.Path });

    public void Dispose() => _folder.Dispose();

    private static RequestOutcome Outcome(string id, int line) => new()
    {
        CustomId = id, LineNumber = line, Endpoint = BatchEndpoint.Completions, CreatedAt = 1_700_000_000,
        Model = "m", Text = "t", FinishReason = FinishReason.Stop, PromptTokens = 1, CompletionTokens = 2,
    };

    private static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items) list.Add(item);
        return list;
    }

    [Fact]
    public async Task AppendAsync_thenRead_returnsOutcomesInOrder()
    {
        await _store.AppendAsync("job1", 0, Outcome("a", 1));
        await _store.AppendAsync("job1", 0, Outcome("b", 2));

        Assert.Equal([Outcome("a", 1), Outcome("b", 2)], await ToListAsync(_store.ReadShardAsync("job1", 0)));
        Assert.Equal(["a", "b"], (await _store.GetDoneCustomIdsAsync("job1", 0)).Order());
    }

    [Fact]
    public async Task ReadShardAsync_tornLastLine_ignored()
    {
        await _store.AppendAsync("job1", 3, Outcome("a", 1));
        var path = Path.Combine(_folder.Path, "job1", "000003.jsonl");
        await File.AppendAllTextAsync(path, """{"custom_id":"b","line_num""");

        Assert.Equal([Outcome("a", 1)], await ToListAsync(_store.ReadShardAsync("job1", 3)));
    }

    [Fact]
    public async Task AppendAsync_afterTornLineByEarlierProcess_newOutcomeReadable()
    {
        var path = Path.Combine(_folder.Path, "job1", "000000.jsonl");
        await new FolderCheckpointStore(new FolderCheckpointStoreOptions { RootPath = _folder.Path }).AppendAsync("job1", 0, Outcome("a", 1));
        await File.AppendAllTextAsync(path, """{"custom_id":"b","li""");

        await _store.AppendAsync("job1", 0, Outcome("c", 3));

        Assert.Equal(["a", "c"], (await ToListAsync(_store.ReadShardAsync("job1", 0))).Select(o => o.CustomId));
    }

    [Fact]
    public async Task ReadJobAsync_severalShards_inShardOrder()
    {
        await _store.AppendAsync("job1", 10, Outcome("c", 30));
        await _store.AppendAsync("job1", 2, Outcome("b", 20));
        await _store.AppendAsync("job2", 0, Outcome("x", 1));

        Assert.Equal(["b", "c"], (await ToListAsync(_store.ReadJobAsync("job1"))).Select(o => o.CustomId));
    }

    [Fact]
    public async Task AppendAsync_concurrentAppends_allLinesIntact()
    {
        await Task.WhenAll(Enumerable.Range(0, 100).Select(i => _store.AppendAsync("job1", 0, Outcome($"id{i}", i))));

        Assert.Equal(100, (await _store.GetDoneCustomIdsAsync("job1", 0)).Count);
    }

    [Fact]
    public async Task AppendAsync_badJobId_throwsInvalidName()
    {
        var e = await Assert.ThrowsAsync<CheckpointStoreException>(() => _store.AppendAsync("../x", 0, Outcome("a", 1)));

        Assert.Equal(CheckpointStoreFailure.InvalidName, e.Reason);
    }
}

using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Local.Tests.Pipelines;

/// <summary>Watermark and run lock on a real folder blob store.</summary>
public sealed class PipelineStateTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 2, 0, 0, TimeSpan.Zero));
    private readonly FolderBlobStore _blobs;
    private readonly PipelineState _state;

    public PipelineStateTests()
    {
        _blobs = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _folder.Path });
        _state = new PipelineState(_blobs, "notes", _time);
    }

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task TryLockAsync_heldAndUnexpired_secondRunIsRefused()
    {
        Assert.True(await _state.TryLockAsync("run-1", TimeSpan.FromHours(1)));
        Assert.False(await _state.TryLockAsync("run-2", TimeSpan.FromHours(1)));
        _time.Advance(TimeSpan.FromMinutes(59));
        Assert.False(await _state.TryLockAsync("run-2", TimeSpan.FromHours(1)));
        Assert.Equal(new PipelineRunLock("run-1", _time.GetUtcNow() + TimeSpan.FromMinutes(1)), await _state.ReadLockAsync());
    }

    [Fact]
    public async Task TryLockAsync_expired_isTakenOverOnce()
    {
        Assert.True(await _state.TryLockAsync("crashed", TimeSpan.FromHours(1)));
        _time.Advance(TimeSpan.FromHours(1) + TimeSpan.FromSeconds(1));

        Assert.True(await _state.TryLockAsync("run-2", TimeSpan.FromHours(1)));
        Assert.False(await _state.TryLockAsync("run-3", TimeSpan.FromHours(1)));
        Assert.Equal("run-2", (await _state.ReadLockAsync())!.RunId);
    }

    [Fact]
    public async Task UnlockAsync_onlyTheHolderReleases()
    {
        Assert.True(await _state.TryLockAsync("run-1", TimeSpan.FromHours(1)));
        await _state.UnlockAsync("someone-else");
        Assert.False(await _state.TryLockAsync("run-2", TimeSpan.FromHours(1)));

        await _state.UnlockAsync("run-1");
        Assert.Null(await _state.ReadLockAsync());
        Assert.True(await _state.TryLockAsync("run-2", TimeSpan.FromHours(1)));
    }

    [Fact]
    public async Task Watermark_roundTripsThroughTheStore()
    {
        Assert.Same(PipelineWatermark.Empty, await _state.ReadWatermarkAsync());
        var at = _time.GetUtcNow();
        await _state.WriteWatermarkAsync(new PipelineWatermark(new Dictionary<string, string> { ["a.txt"] = "\"1\"", ["b/c.md"] = "\"2\"" }, "run-1", at));

        var read = await new PipelineState(_blobs, "notes", _time).ReadWatermarkAsync();
        Assert.Equal([("a.txt", "\"1\""), ("b/c.md", "\"2\"")], read.PathToETag.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Value)));
        Assert.Equal(("run-1", (DateTimeOffset?)at), (read.LastRunId, read.LastRunAt));
        Assert.True(await _blobs.ExistsAsync("pipelines/notes/watermark.json"));
    }
}

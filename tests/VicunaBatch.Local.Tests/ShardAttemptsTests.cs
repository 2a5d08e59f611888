using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Local.Tests;

/// <summary>How <see cref="ShardAttempts"/> tells a crash-looping shard from one whose workers keep being restarted.</summary>
public sealed class ShardAttemptsTests : IDisposable
{
    private readonly LocalRig _rig = new();
    private readonly ShardAttempts _attempts;

    private static readonly Shard TheShard = new()
    {
        JobId = "job1", ShardIndex = 3, InputBlob = "in", Format = InputFormat.Jsonl, FirstLine = 1, LineCount = 10,
        ByteOffset = 0, ByteLength = 100, NumRequests = 10,
    };

    public ShardAttemptsTests() => _attempts = new ShardAttempts(_rig.Blobs);

    public void Dispose() => _rig.Dispose();

    private static ReceivedMessage Delivery(int count, int generation = 0) =>
        new(ShardAttempts.MessageIdOf(TheShard, generation), "{}", count, "lock", LocalRig.Start);

    [Fact]
    public void MessageIdOf_generations_roundTripThroughGenerationOf()
    {
        Assert.Equal("job1:3", ShardAttempts.MessageIdOf(TheShard, 0));
        Assert.Equal("job1:3:g2", ShardAttempts.MessageIdOf(TheShard, 2));
        Assert.Equal([0, 1, 2, 17], new[] { 0, 1, 2, 17 }.Select(g => ShardAttempts.GenerationOf(ShardAttempts.MessageIdOf(TheShard, g))));
        Assert.Equal(0, ShardAttempts.GenerationOf("job:g:3")); // a job id holding ":g" is not a generation
    }

    [Fact]
    public async Task BeginAsync_firstDelivery_countsNothingAndWritesNothing()
    {
        var attempt = await _attempts.BeginAsync(TheShard, Delivery(1), 0);

        Assert.Equal(0, attempt.Stalled);
        Assert.Empty(await _rig.Blobs.ListAsync("jobs/job1/attempts/").ToListAsync());
    }

    [Fact]
    public async Task BeginAsync_deliveriesWithoutProgress_countUp()
    {
        var stalled = new List<int>();
        for (int count = 1; count <= 5; count++) stalled.Add((await _attempts.BeginAsync(TheShard, Delivery(count), 0)).Stalled);

        Assert.Equal([0, 1, 2, 3, 4], stalled);
    }

    [Fact]
    public async Task BeginAsync_deliveriesLostBeforeAWorkerSawThem_countToo()
    {
        // deliveries 2 and 3 ended (lock expiry) before any worker recorded them: delivery 4 judges all three
        await _attempts.BeginAsync(TheShard, Delivery(1), 0);

        Assert.Equal(3, (await _attempts.BeginAsync(TheShard, Delivery(4), 0)).Stalled);
    }

    [Fact]
    public async Task BeginAsync_anyProgress_startsTheCountAgain()
    {
        await _attempts.BeginAsync(TheShard, Delivery(1), 0);
        await _attempts.BeginAsync(TheShard, Delivery(2), 0);
        Assert.Equal(2, (await _attempts.BeginAsync(TheShard, Delivery(3), 0)).Stalled);

        Assert.Equal(0, (await _attempts.BeginAsync(TheShard, Delivery(4), 1)).Stalled);
        Assert.Equal(1, (await _attempts.BeginAsync(TheShard, Delivery(5), 1)).Stalled);
    }

    [Fact]
    public async Task ReleaseAsync_deliveryGivenBackOnAStop_doesNotCount()
    {
        var stalled = new List<int>();
        for (int count = 1; count <= 8; count++)
        {
            var attempt = await _attempts.BeginAsync(TheShard, Delivery(count), 0);
            stalled.Add(attempt.Stalled);
            await _attempts.ReleaseAsync(TheShard, attempt, 0);
        }

        Assert.All(stalled, s => Assert.Equal(0, s));
    }

    [Fact]
    public async Task BeginAsync_freshGeneration_keepsTheCountOfTheOldOne()
    {
        await _attempts.BeginAsync(TheShard, Delivery(1), 0);
        await _attempts.BeginAsync(TheShard, Delivery(2), 0);
        var resent = await _attempts.BeginAsync(TheShard, Delivery(3), 0); // 2 stalled, then continued as generation 1
        await _attempts.ReleaseAsync(TheShard, resent, 0);

        Assert.Equal(2, (await _attempts.BeginAsync(TheShard, Delivery(1, generation: 1), 0)).Stalled);
        Assert.Equal(3, (await _attempts.BeginAsync(TheShard, Delivery(2, generation: 1), 0)).Stalled);
        Assert.Equal(0, (await _attempts.BeginAsync(TheShard, Delivery(3, generation: 1), 4)).Stalled);
    }
}

using System.Text;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Core.Tests;

public sealed class GroupCommitTests
{
    /// <summary>Records each write; a write waits for its gate when one is set.</summary>
    private sealed class Target
    {
        private readonly object _lock = new();
        public List<(string Key, string[] Lines)> Writes { get; } = [];
        public TaskCompletionSource? Gate { get; set; }
        public TaskCompletionSource FirstWriteStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Exception? FailNext { get; set; }

        public async Task WriteAsync(string key, byte[] lines)
        {
            FirstWriteStarted.TrySetResult();
            if (Gate is { } gate) await gate.Task;
            lock (_lock)
            {
                if (FailNext is { } failure)
                {
                    FailNext = null;
                    throw failure;
                }
                Writes.Add((key, Encoding.UTF8.GetString(lines).Split('\n', StringSplitOptions.RemoveEmptyEntries)));
            }
        }
    }

    private static byte[] Line(string text) => Encoding.UTF8.GetBytes(text + "\n");

    [Fact]
    public async Task AppendAsync_linesArrivingDuringAWrite_goTogetherInTheNextWrite()
    {
        var target = new Target { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        var commits = new GroupCommit<string>(target.WriteAsync);

        var first = commits.AppendAsync("f", Line("a"));
        await target.FirstWriteStarted.Task;
        var later = new[] { commits.AppendAsync("f", Line("b")), commits.AppendAsync("f", Line("c")), commits.AppendAsync("f", Line("d")) };
        Assert.False(first.IsCompleted);
        Assert.All(later, t => Assert.False(t.IsCompleted));
        target.Gate.SetResult();
        await Task.WhenAll([first, .. later]);

        Assert.Equal([("f", ["a"]), ("f", ["b", "c", "d"])], target.Writes.Select(w => (w.Key, w.Lines)));
    }

    [Fact]
    public async Task AppendAsync_aTargetWhoseWriteIsSlow_doesNotHoldUpAnother()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var written = new List<string>();
        var commits = new GroupCommit<string>(async (key, lines) =>
        {
            if (key == "slow") await gate.Task;
            lock (written) written.Add(key);
        });

        var held = commits.AppendAsync("slow", Line("s"));
        await commits.AppendAsync("fast", Line("f")).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.False(held.IsCompleted);
        Assert.Equal(["fast"], written);
        gate.SetResult();
        await held;
        Assert.Equal(["fast", "slow"], written);
    }

    [Fact]
    public async Task AppendAsync_manyConcurrentAppends_eachLineOnceInAppendOrderPerTarget()
    {
        var target = new Target();
        var commits = new GroupCommit<string>(target.WriteAsync);

        await Task.WhenAll(Enumerable.Range(0, 4).Select(k => Task.Run(async () =>
        {
            for (int i = 0; i < 500; i++) await commits.AppendAsync($"k{k}", Line($"{i}"));
        })).Concat(Enumerable.Range(0, 200).Select(i => commits.AppendAsync("burst", Line($"{i}")))));

        for (int k = 0; k < 4; k++)
        {
            Assert.Equal(Enumerable.Range(0, 500).Select(i => $"{i}"), target.Writes.Where(w => w.Key == $"k{k}").SelectMany(w => w.Lines));
        }
        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"{i}"), target.Writes.Where(w => w.Key == "burst").SelectMany(w => w.Lines));
    }

    [Fact]
    public async Task AppendAsync_failedWrite_failsEveryLineInItAndLaterAppendsGoOn()
    {
        var target = new Target { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        var commits = new GroupCommit<string>(target.WriteAsync);
        var first = commits.AppendAsync("f", Line("a"));
        await target.FirstWriteStarted.Task;
        var second = commits.AppendAsync("f", Line("b"));
        var third = commits.AppendAsync("f", Line("c"));
        target.FailNext = new IOException("disk full");
        target.Gate.SetResult();

        Assert.Equal("disk full", (await Assert.ThrowsAsync<IOException>(() => first)).Message);
        await Task.WhenAll(second, third);
        await commits.AppendAsync("f", Line("d"));

        Assert.Equal([["b", "c"], ["d"]], target.Writes.Select(w => w.Lines));
    }

    [Fact]
    public async Task AppendAsync_pendingLinesOverTheByteLimit_splitIntoWritesUnderIt()
    {
        var target = new Target { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        var commits = new GroupCommit<string>(target.WriteAsync, maxBatchBytes: 8);
        var first = commits.AppendAsync("f", Line("x"));
        await target.FirstWriteStarted.Task;
        var rest = new[] { "aa", "bb", "c", "dddddddd", "e" }.Select(l => commits.AppendAsync("f", Line(l))).ToArray();
        target.Gate.SetResult();
        await Task.WhenAll([first, .. rest]);

        // with their newlines 3 + 3 + 2 = 8 bytes fit; the 9-byte line goes alone
        Assert.Equal([["x"], ["aa", "bb", "c"], ["dddddddd"], ["e"]], target.Writes.Select(w => w.Lines));
    }

    [Fact]
    public async Task AppendAsync_cancelledWait_theLineIsWrittenAllTheSame()
    {
        var target = new Target { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        var commits = new GroupCommit<string>(target.WriteAsync);
        using var cancel = new CancellationTokenSource();
        var waiting = commits.AppendAsync("f", Line("a"), cancel.Token);
        await target.FirstWriteStarted.Task;
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        target.Gate.SetResult();
        await commits.AppendAsync("f", Line("b"));
        Assert.Equal(["a", "b"], target.Writes.SelectMany(w => w.Lines));
    }
}

using System.Text.Json;
using System.Text;
using VicunaBatch.Core.Diagnostics;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Results;
using VicunaBatch.Local.Tests.Webhooks;
using VicunaBatch.Testing;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// kill -9 of the whole server (API, worker, finalizer, webhook deliverer in one process) at each crash point of a
/// batch's life, then a restart on the same data folder: the batch ends completed, the checker finds every valid
/// custom_id exactly once across output and errors, counts that agree with the batch
/// object, and exactly one terminal webhook event; no request ran twice once its result was checkpointed.
/// </summary>
public sealed class ServeFaultTests : IDisposable
{
    private const string ApiKey = "vb-fault-tests-key-1";
    private const int NumValid = 40;
    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private string DataPath => Path.Combine(_folder.Root, "data");

    public static TheoryData<string, int> CrashPointsAndDeliveries => new()
    {
        { "request.before-checkpoint#12", 1 }, // 11 results checkpointed, the 12th only in memory
        { "request.after-checkpoint#12", 1 },  // 12 checkpointed, their shard message not settled
        { "shard.after-complete#2", 1 },       // two shards acknowledged, their shard-done events never sent
        { "job.after-files", 1 },              // output and error files written, job.json still "finalizing"
        { "webhook.after-send", 2 },           // the receiver answered 200, the server died before recording it: sent again, same event id
    };

    [Theory]
    [MemberData(nameof(CrashPointsAndDeliveries))]
    public async Task Killed_at_a_crash_point_then_restarted_the_batch_ends_whole_with_one_webhook_event(string crashAt, int numDeliveries)
    {
        await using var receiver = new LoopbackReceiver();
        var lines = Input();
        string batchId;
        using (var first = await StartAsync(new Dictionary<string, string> { [CrashPoints.Variable] = crashAt }))
        {
            batchId = await CreateBatchAsync(first, lines, receiver.Url);
            Assert.Equal(137, await first.Process.WaitForExitAsync(TimeSpan.FromSeconds(90))); // SIGKILL
            Assert.Contains($"{CrashPoints.Variable}: reached", first.Logs);
        }

        using var second = await StartAsync();
        var batch = await second.WaitForBatchEndAsync(batchId, TimeSpan.FromSeconds(90));
        await WaitForDeliveriesAsync(second, receiver, numDeliveries);
        var report = await CheckAsync(second, lines, batch, receiver);
        second.Process.Kill();

        Assert.Equal("completed", batch.GetProperty("status").GetString());
        Assert.True(report.IsWhole, string.Join("\n", report.Problems));
        Assert.Equal((NumValid, 0, NumValid, 0, 1), (report.NumValidRequests, report.NumRejectedLines, report.NumOutputLines, report.NumErrorLines, report.NumTerminalEvents!.Value));
        Assert.Equal(numDeliveries, receiver.Requests.Count);
        Assert.Single(receiver.Requests.Select(r => r.Id).Distinct());
        var checkpointed = RunFolder.ReadCheckpointedIds(Path.Combine(DataPath, "checkpoints"));
        Assert.Equal(NumValid, checkpointed.Count); // none run twice after its result was checkpointed
        Assert.Equal(NumValid, checkpointed.Distinct().Count());
    }

    [Fact]
    public async Task Webhook_receiver_answering_500_then_200_gets_the_event_again_with_the_same_id_and_the_log_holds_one_terminal_event()
    {
        await using var receiver = new LoopbackReceiver(500);
        var lines = Input();
        using var serve = await StartAsync();
        var batchId = await CreateBatchAsync(serve, lines, receiver.Url);
        var batch = await serve.WaitForBatchEndAsync(batchId, TimeSpan.FromSeconds(90));
        await WaitForDeliveriesAsync(serve, receiver, 2, TimeSpan.FromSeconds(30)); // the schedule's first retry is 5 s later
        var report = await CheckAsync(serve, lines, batch, receiver);

        Assert.True(report.IsWhole, string.Join("\n", report.Problems));
        Assert.Equal(1, report.NumTerminalEvents);
        Assert.Equal(2, receiver.Requests.Count);
        Assert.Single(receiver.Requests.Select(r => r.Id).Distinct());
    }

    [Fact]
    public async Task Webhook_receiver_answering_410_gets_one_attempt_and_the_batch_is_still_whole()
    {
        await using var receiver = new LoopbackReceiver(410);
        var lines = Input();
        using var serve = await StartAsync();
        var batchId = await CreateBatchAsync(serve, lines, receiver.Url);
        var batch = await serve.WaitForBatchEndAsync(batchId, TimeSpan.FromSeconds(90));
        await WaitForDeliveriesAsync(serve, receiver, 1, settle: TimeSpan.FromSeconds(7)); // past the first retry time: none comes
        var report = await CheckAsync(serve, lines, batch, receiver);

        Assert.True(report.IsWhole, string.Join("\n", report.Problems));
        Assert.Single(receiver.Requests);
    }

    [Fact]
    public async Task Webhook_receiver_down_when_the_batch_ends_and_back_before_the_retry_gets_one_event()
    {
        var port = LoopbackPorts.Free(); // nothing listens there yet: connection refused
        var lines = Input();
        using var serve = await StartAsync();
        var batchId = await CreateBatchAsync(serve, lines, $"http://127.0.0.1:{port}/hooks/batch");
        var batch = await serve.WaitForBatchEndAsync(batchId, TimeSpan.FromSeconds(90));
        await Task.Delay(TimeSpan.FromSeconds(1)); // the first attempt has met the refused port by now
        await using var receiver = LoopbackReceiver.OnPort(port); // back up before the schedule's 5 s retry
        await WaitForDeliveriesAsync(serve, receiver, 1, settle: TimeSpan.FromSeconds(2));
        var report = await CheckAsync(serve, lines, batch, receiver);

        Assert.True(report.IsWhole, string.Join("\n", report.Problems));
        Assert.Equal(1, report.NumTerminalEvents);
        Assert.Single(receiver.Requests);
    }

    [Fact]
    public async Task Webhook_receiver_slower_than_the_timeout_gets_the_event_again_with_the_same_id()
    {
        await using var receiver = new LoopbackReceiver();
        receiver.Delays.Enqueue(TimeSpan.FromSeconds(17)); // past serve's 15 s attempt timeout: recorded as a timeout, retried
        var lines = Input();
        using var serve = await StartAsync();
        var batchId = await CreateBatchAsync(serve, lines, receiver.Url);
        var batch = await serve.WaitForBatchEndAsync(batchId, TimeSpan.FromSeconds(90));
        await WaitForDeliveriesAsync(serve, receiver, 2, TimeSpan.FromSeconds(60));
        var report = await CheckAsync(serve, lines, batch, receiver);

        Assert.True(report.IsWhole, string.Join("\n", report.Problems));
        Assert.Equal(1, report.NumTerminalEvents); // two requests, one event id: the receiver dedupes by it
        Assert.Equal(2, receiver.Requests.Count);
        Assert.Single(receiver.Requests.Select(r => r.Id).Distinct());
    }

    /// <summary>40 prompts of 2 to 60 tokens, 10 per shard (the API refuses a file with broken lines as a whole, as
    /// OpenAI's does; broken lines inside a job are the run tests' and the bad-input corpus's).</summary>
    private static List<string> Input() => Enumerable.Range(0, NumValid)
        .Select(i => JsonSerializer.Serialize(new { custom_id = $"r{i}", prompt = $"note {i} about the night shift", max_tokens = 2 + (i * 37 % 59) }))
        .ToList();

    private Task<ServeProcess> StartAsync(Dictionary<string, string>? environment = null) =>
        ServeProcess.StartAsync(_folder.Root, DataPath, ApiKey, environment, "--requests-per-shard", "10");

    private static async Task<string> CreateBatchAsync(ServeProcess serve, List<string> lines, string webhookUrl)
    {
        var fileId = await serve.UploadAsync(lines);
        var batch = await serve.CreateBatchAsync(new
        {
            input_file_id = fileId, endpoint = "/v1/completions", completion_window = "24h", webhook = new { url = webhookUrl },
        });
        return batch.GetProperty("id").GetString()!;
    }

    /// <summary>Waits for <paramref name="count"/> requests at the receiver, then <paramref name="settle"/> longer for stray ones.</summary>
    private static async Task WaitForDeliveriesAsync(ServeProcess serve, LoopbackReceiver receiver, int count, TimeSpan? timeout = null, TimeSpan? settle = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (receiver.Requests.Count < count && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.True(receiver.Requests.Count >= count, $"{receiver.Requests.Count} of {count} webhook requests arrived; serve said:\n{serve.Logs}");
        await Task.Delay(settle ?? TimeSpan.FromSeconds(1));
    }

    /// <summary>The checker's verdict on the batch's files as the API serves them and on the receiver's log.</summary>
    private static async Task<CheckReport> CheckAsync(ServeProcess serve, List<string> lines, JsonElement batch, LoopbackReceiver receiver)
    {
        static string? Id(JsonElement batch, string name) => batch.GetProperty(name).ValueKind == JsonValueKind.String ? batch.GetProperty(name).GetString() : null;
        using var input = new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"));
        using var output = new MemoryStream(await serve.FileContentAsync(Id(batch, "output_file_id")));
        using var errors = new MemoryStream(await serve.FileContentAsync(Id(batch, "error_file_id")));
        using var job = new MemoryStream(Encoding.UTF8.GetBytes(batch.GetRawText()));
        using var log = new MemoryStream(receiver.Requests.SelectMany(r => r.Body.Append((byte)'\n')).ToArray());
        return await new ResultsChecker(new InputOptions()).CheckAsync(input, InputFormat.Jsonl, output, errors, job, log);
    }
}

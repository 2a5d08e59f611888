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
        { "job.after-end", 1 },                // job.json says completed, its webhook event not yet in the outbox
        { "webhook.after-send", 2 },           // the receiver answered 200, the server died before recording it: sent again, same event id
    };

    [Theory]
    [MemberData(nameof(CrashPointsAndDeliveries))]
    public async Task Killed_at_a_crash_point_then_restarted_the_batch_ends_whole_with_one_webhook_event(string crashAt, int numDeliveries)
    {
        await using var receiver = new LoopbackReceiver();
        var lines = Input();
        string? batchId;
        using (var first = await StartAsync(new Dictionary<string, string> { [CrashPoints.Variable] = crashAt }))
        {
            // the batch is stored before its work starts, but the crash may come before the create's answer is written
            // (a fast model checkpoints 12 results first): then the restarted server names it
            try { batchId = await CreateBatchAsync(first, lines, receiver.Url); }
            catch (HttpRequestException) { batchId = null; }
            Assert.Equal(137, await first.Process.WaitForExitAsync(TimeSpan.FromSeconds(90))); // SIGKILL
            Assert.Contains($"{CrashPoints.Variable}: reached", first.Logs);
        }

        using var second = await StartAsync();
        batchId ??= Assert.Single((await ServeProcess.JsonAsync(await second.SendAsync(HttpMethod.Get, "/v1/batches"))).GetProperty("data").EnumerateArray())
            .GetProperty("id").GetString()!;
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

    /// <summary>
    /// A batch that fails at create (no valid line) ends inside the create request, before any shard exists: killed
    /// between job.json's <c>failed</c> and the outbox, no shard-done event will come back for it. The sweep that runs as
    /// the restarted serve starts finds it ended but never announced and announces it.
    /// </summary>
    [Fact]
    public async Task Killed_after_a_batch_failed_at_create_before_its_event_then_restarted_the_sweep_announces_it_once()
    {
        await using var receiver = new LoopbackReceiver();
        using (var first = await StartAsync(new Dictionary<string, string> { [CrashPoints.Variable] = CrashPoints.JobAfterEnd }))
        {
            var fileId = await first.UploadAsync(["{not json", "{\"custom_id\":\"get\",\"method\":\"GET\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\"}}"]);
            await Assert.ThrowsAsync<HttpRequestException>(() => first.CreateBatchAsync(new
            {
                input_file_id = fileId, endpoint = "/v1/completions", completion_window = "24h", webhook = new { url = receiver.Url },
            })); // killed inside the create: no answer
            Assert.Equal(137, await first.Process.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.Contains($"{CrashPoints.Variable}: reached", first.Logs);
        }

        using var second = await StartAsync();
        var batch = Assert.Single((await ServeProcess.JsonAsync(await second.SendAsync(HttpMethod.Get, "/v1/batches"))).GetProperty("data").EnumerateArray());
        await WaitForDeliveriesAsync(second, receiver, 1);
        second.Process.Kill();

        Assert.Equal("failed", batch.GetProperty("status").GetString());
        var request = Assert.Single(receiver.Requests);
        var evt = JsonDocument.Parse(request.Body).RootElement;
        Assert.Equal(("batch.failed", batch.GetProperty("id").GetString()), (evt.GetProperty("type").GetString(), evt.GetProperty("data").GetProperty("id").GetString()));
    }

    /// <summary>
    /// Spot and serverless GPUs are stopped often, mid-batch: ten restarts, alternately SIGTERM (a drain) and kill -9,
    /// each after the batch made some progress. Each restart is one more delivery of every shard in flight, twice the
    /// count that once made a shard poison; none may fail, and none that was checkpointed may run again.
    /// </summary>
    [Fact]
    public async Task Batch_through_ten_restarts_alternating_sigterm_and_kill9_ends_with_none_failed()
    {
        const int numRequests = 320, progressPerRestart = 8;
        await using var receiver = new LoopbackReceiver();
        var lines = Enumerable.Range(0, numRequests)
            .Select(i => JsonSerializer.Serialize(new { custom_id = $"r{i}", prompt = $"shift note {i}", max_tokens = 20 + (i * 37 % 180) }))
            .ToList();
        var checkpoints = Path.Combine(DataPath, "checkpoints");
        // two shards, four requests at a time, on the random-weight package whose requests run to their max_tokens (the
        // trained model ends its answers early, and a shard could finish before the restarts): each shard is in flight
        // at every restart
        Task<ServeProcess> Start() => ServeProcess.StartAsync(_folder.Root, DataPath, ApiKey, null, "--requests-per-shard", "160", "--max-batch-size", "4",
            "--model", $"tiny={LongRunningModel.Path}");
        var serve = await Start();
        var batchId = await CreateBatchAsync(serve, lines, receiver.Url);
        var stops = new List<string>();
        try
        {
            for (int restart = 0; restart < 10; restart++)
            {
                int target = Math.Min(numRequests - 1, RunFolder.ReadCheckpointedIds(checkpoints).Count + progressPerRestart);
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (RunFolder.ReadCheckpointedIds(checkpoints).Count < target && DateTime.UtcNow < deadline && !await EndedAsync(serve, batchId))
                    await Task.Delay(20);
                Assert.True(RunFolder.ReadCheckpointedIds(checkpoints).Count >= target,
                    $"restart {restart}: no progress ({RunFolder.ReadCheckpointedIds(checkpoints).Count} done); batch: {await serve.GetBatchAsync(batchId)}\n{serve.Logs}");
                if (restart % 2 == 0)
                {
                    serve.Process.Terminate();
                    Assert.Equal(0, await serve.Process.WaitForExitAsync(TimeSpan.FromSeconds(60)));
                }
                else
                {
                    serve.Process.Kill();
                }
                stops.Add($"{(restart % 2 == 0 ? "SIGTERM" : "kill -9")} at {RunFolder.ReadCheckpointedIds(checkpoints).Count} done");
                serve.Dispose();
                serve = await Start();
            }
            var batch = await serve.WaitForBatchEndAsync(batchId, TimeSpan.FromSeconds(120));
            await WaitForDeliveriesAsync(serve, receiver, 1);
            var report = await CheckAsync(serve, lines, batch, receiver);

            var counts = batch.GetProperty("request_counts");
            Assert.True(("completed", numRequests, numRequests, 0) ==
                (batch.GetProperty("status").GetString(), counts.GetProperty("total").GetInt32(), counts.GetProperty("completed").GetInt32(), counts.GetProperty("failed").GetInt32()),
                $"{batch}\nstops: {string.Join(", ", stops)}\n{serve.Logs}");
            Assert.True(report.IsWhole, string.Join("\n", report.Problems));
            Assert.Equal((numRequests, 0, 1), (report.NumOutputLines, report.NumErrorLines, report.NumTerminalEvents!.Value));
            var checkpointed = RunFolder.ReadCheckpointedIds(checkpoints);
            Assert.Equal(numRequests, checkpointed.Count); // none run twice after its result was checkpointed
            Assert.Equal(numRequests, checkpointed.Distinct().Count());
            // past the delivery count that once made them poison: both went on as fresh messages
            var attempts = Directory.EnumerateFiles(DataPath, "*.json", SearchOption.AllDirectories)
                .Where(f => Path.GetFileName(Path.GetDirectoryName(f)) == "attempts").ToList();
            Assert.Equal(2, attempts.Count);
            Assert.All(attempts, a => Assert.True(JsonDocument.Parse(File.ReadAllText(a)).RootElement.GetProperty("generation").GetInt32() >= 1, File.ReadAllText(a)));
        }
        finally
        {
            serve.Dispose();
        }
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

    private static async Task<bool> EndedAsync(ServeProcess serve, string batchId) =>
        (await serve.GetBatchAsync(batchId)).GetProperty("status").GetString() is "completed" or "failed" or "expired" or "cancelled";

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

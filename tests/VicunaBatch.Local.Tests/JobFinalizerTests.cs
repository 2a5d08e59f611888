using VicunaBatch.Testing;
using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Local.Tests;

public sealed class JobFinalizerTests : IDisposable
{
    private readonly LocalRig _rig = new(requestsPerShard: 2);

    public void Dispose() => _rig.Dispose();

    private const string Input =
        "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n" +
        "{bad json\n" +
        "\n" +
        "{\"custom_id\":\"b\",\"messages\":[{\"role\":\"user\",\"content\":\"two\"}]}\n" +
        "{\"custom_id\":\"c\",\"prompt\":\"boom\"}\n" +
        "{\"custom_id\":\"a\",\"prompt\":\"dup\"}\n" +
        "{\"custom_id\":\"d\",\"prompt\":\"four\"}\n";

    private static string CustomId(string line) => JsonDocument.Parse(line).RootElement.GetProperty("custom_id").GetString()!;

    /// <summary>An error line's HTTP status, code and input line (a rejected line's only).</summary>
    private static (int, string, int?) StatusCodeAndLine(string line)
    {
        var root = JsonDocument.Parse(line).RootElement;
        var error = ErrorLines.ErrorOf(root);
        return (root.GetProperty("response").GetProperty("status_code").GetInt32(), error.GetProperty("code").GetString()!,
            error.TryGetProperty("line", out var l) ? l.GetInt32() : null);
    }

    [Fact]
    public async Task TryFinalizeAsync_allShardsDone_writesFilesInLineOrderWithAgreeingCounts()
    {
        var job = await _rig.SubmitAsync("job1", Input);
        await _rig.DrainAsync(_rig.Processor(new EchoExecutor()));

        var result = await _rig.Finalizer.TryFinalizeAsync("job1");

        var output = await _rig.ReadLinesAsync(JobIds.OutputBlob("job1"));
        var errors = await _rig.ReadLinesAsync(JobIds.ErrorsBlob("job1"));
        Assert.Equal(FinalizeStatus.Finalized, result.Status);
        Assert.Equal(["a", "b", "d"], output.Select(CustomId));
        Assert.Equal(["line-2", "c", "a"], errors.Select(CustomId));
        Assert.Equal([(400, "invalid_json", 2), (500, "execution_failed", null), (400, "duplicate_custom_id", 6)], errors.Select(StatusCodeAndLine));
        Assert.StartsWith("invalid JSON: ", ErrorLines.ErrorOf(errors[0]).GetProperty("message").GetString());
        Assert.Equal("engine exploded", ErrorLines.ErrorOf(errors[1]).GetProperty("message").GetString());
        Assert.Equal("custom_id \"a\" already used on an earlier line", ErrorLines.ErrorOf(errors[2]).GetProperty("message").GetString());
        Assert.All(errors, e => Assert.Equal(JsonValueKind.Null, JsonDocument.Parse(e).RootElement.GetProperty("error").ValueKind));
        var stored = (await _rig.Jobs.GetAsync("job1"))!.Job;
        Assert.Equal((JobStatus.Completed, new RequestCounts(6, 3, 3)), (stored.Status, stored.RequestCounts));
        Assert.Equal(new BatchUsage(3 + 3 + 4, 6, 16), stored.Usage);
        Assert.Equal((JobIds.OutputBlob("job1"), JobIds.ErrorsBlob("job1")), (stored.OutputFileId, stored.ErrorFileId));
        Assert.Equal((6, job.RequestCounts.Total), (stored.RequestCounts.Total, output.Length + errors.Length));
    }

    [Fact]
    public async Task TryFinalizeAsync_sameCustomIdCheckpointedTwice_appearsOnce()
    {
        await _rig.SubmitAsync("job1", "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n");
        await _rig.DrainAsync(_rig.Processor(new EchoExecutor()));
        var duplicate = RequestOutcome.Success(new BatchRequest { CustomId = "a", LineNumber = 1, Endpoint = BatchEndpoint.Completions, Prompt = "one" },
            "echo-model", "second run", FinishReason.Stop, 3, 2, LocalRig.Start);
        await _rig.Checkpoints.AppendAsync("job1", 0, duplicate);

        await _rig.Finalizer.TryFinalizeAsync("job1");

        var output = Assert.Single(await _rig.ReadLinesAsync(JobIds.OutputBlob("job1")));
        Assert.Contains("\"text\":\"echo: one\"", output);
        Assert.Equal(new RequestCounts(1, 1, 0), (await _rig.Jobs.GetAsync("job1"))!.Job.RequestCounts);
    }

    [Fact]
    public async Task TryFinalizeAsync_againAfterCrashInFinalizing_byteIdenticalFiles()
    {
        await _rig.SubmitAsync("job1", Input);
        await _rig.DrainAsync(_rig.Processor(new EchoExecutor()));
        await _rig.Finalizer.TryFinalizeAsync("job1");
        var output = await _rig.Blobs.ReadBytesAsync(JobIds.OutputBlob("job1"));
        var errors = await _rig.Blobs.ReadBytesAsync(JobIds.ErrorsBlob("job1"));
        var stored = (await _rig.Jobs.GetAsync("job1"))!;
        stored.Job.Status = JobStatus.Finalizing;
        await _rig.Jobs.SaveAsync(stored.Job, stored.ETag);
        _rig.Time.Advance(TimeSpan.FromHours(1));

        var again = await _rig.Finalizer.TryFinalizeAsync("job1");

        Assert.Equal(FinalizeStatus.Finalized, again.Status);
        Assert.Equal(output, await _rig.Blobs.ReadBytesAsync(JobIds.OutputBlob("job1")));
        Assert.Equal(errors, await _rig.Blobs.ReadBytesAsync(JobIds.ErrorsBlob("job1")));
    }

    [Fact]
    public async Task TryFinalizeAsync_shardsPending_notReadyWithProgress()
    {
        await _rig.SubmitAsync("job1", Input);
        var processor = _rig.Processor(new EchoExecutor());
        await processor.ProcessAsync((await _rig.Queue.ReceiveAsync(1)).Single());

        var result = await _rig.Finalizer.TryFinalizeAsync("job1");

        Assert.Equal(FinalizeStatus.NotReady, result.Status);
        Assert.Equal(new JobProgress(6, 2, 2, 6, 4, 1, 2), result.Job.Progress);
        Assert.Equal(JobStatus.InProgress, (await _rig.Jobs.GetAsync("job1"))!.Job.Status);
    }

    [Fact]
    public async Task TryFinalizeAsync_deadLetteredShard_unfinishedRequestsBecomeShardFailed()
    {
        await _rig.SubmitAsync("job1", "{\"custom_id\":\"a\",\"prompt\":\"x\"}\n{\"custom_id\":\"b\",\"prompt\":\"y\"}\n");
        await _rig.Checkpoints.AppendAsync("job1", 0, RequestOutcome.Success(
            new BatchRequest { CustomId = "a", LineNumber = 1, Endpoint = BatchEndpoint.Completions, Prompt = "x" }, "m", "done", FinishReason.Stop, 1, 1, LocalRig.Start));
        // a delivery that began with "a" done, and the next one finding no more done: poison after one stalled delivery
        var message = (await _rig.Queue.ReceiveAsync(1)).Single();
        await new ShardAttempts(_rig.Blobs).BeginAsync(Shard.FromJson(message.Body), message with { DeliveryCount = 2 }, numDone: 1);
        await _rig.Processor(new EchoExecutor(), maxDeliveries: 1).ProcessAsync(message with { DeliveryCount = 3 });

        var result = await _rig.Finalizer.TryFinalizeAsync("job1");

        Assert.Equal((FinalizeStatus.Finalized, JobStatus.Completed), (result.Status, result.Job.Status));
        Assert.Equal(["a"], (await _rig.ReadLinesAsync(JobIds.OutputBlob("job1"))).Select(CustomId));
        var error = ErrorLines.ErrorOf(Assert.Single(await _rig.ReadLinesAsync(JobIds.ErrorsBlob("job1"))));
        Assert.Equal(("shard_failed", "server_error", "shard 0 was dead-lettered: 1 delivery in a row made no progress (no request checkpointed; MaxDeliveriesWithoutProgress 1)"),
            (error.GetProperty("code").GetString(), error.GetProperty("type").GetString(), error.GetProperty("message").GetString()));
        Assert.Equal(new RequestCounts(2, 1, 1), result.Job.RequestCounts);
    }

    [Fact]
    public async Task TryFinalizeAsync_noValidLines_completesWithOnlyErrors()
    {
        var job = await _rig.SubmitAsync("job1", "nope\n[]\n");

        var result = await _rig.Finalizer.TryFinalizeAsync("job1");

        Assert.Equal((JobStatus.InProgress, FinalizeStatus.Finalized), (job.Status, result.Status));
        Assert.Empty(await _rig.ReadLinesAsync(JobIds.OutputBlob("job1")));
        Assert.Equal(2, (await _rig.ReadLinesAsync(JobIds.ErrorsBlob("job1"))).Length);
        Assert.Equal(new RequestCounts(2, 0, 2), result.Job.RequestCounts);
    }
}

public sealed class JobSubmitterTests : IDisposable
{
    private readonly LocalRig _rig = new(requestsPerShard: 2);

    public void Dispose() => _rig.Dispose();

    [Fact]
    public async Task SubmitAsync_validInput_inProgressWithOneMessagePerShard()
    {
        var job = await _rig.SubmitAsync("job1", "{\"prompt\":\"a\"}\n{\"prompt\":\"b\"}\n{\"prompt\":\"c\"}\n");

        Assert.Equal((JobStatus.InProgress, "/v1/completions", new RequestCounts(3, 0, 0)), (job.Status, job.Endpoint, job.RequestCounts));
        Assert.Equal((LocalRig.Start.ToUnixTimeSeconds(), LocalRig.Start.AddHours(24).ToUnixTimeSeconds()), (job.CreatedAt, job.ExpiresAt!.Value));
        Assert.Equal(["job1:0", "job1:1"], (await _rig.Queue.ReceiveAsync(10)).Select(m => m.MessageId));
    }

    [Fact]
    public async Task SubmitAsync_sameJobIdAgain_returnsExistingJobAndSendsNothing()
    {
        var first = await _rig.SubmitAsync("job1", "{\"prompt\":\"a\"}\n");
        foreach (var message in await _rig.Queue.ReceiveAsync(10)) await _rig.Queue.CompleteAsync(message);

        var second = await _rig.Submitter.SubmitAsync(new JobSubmission("inputs/in.jsonl") { JobId = "job1" });

        Assert.Equal((first.Id, first.Status, first.InProgressAt), (second.Id, second.Status, second.InProgressAt));
        Assert.Equal(0, await _rig.Queue.CountAsync());
    }

    [Fact]
    public async Task SubmitAsync_emptyFile_failsWithEmptyInput()
    {
        var job = await _rig.SubmitAsync("job1", "\n\n");

        Assert.Equal((JobStatus.Failed, "empty_input"), (job.Status, job.Errors!.Data.Single().Code));
        Assert.Equal(0, await _rig.Queue.CountAsync());
    }

    [Fact]
    public async Task SubmitAsync_badJobId_throws()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => _rig.SubmitAsync("../etc", "{\"prompt\":\"a\"}\n"));
    }
}

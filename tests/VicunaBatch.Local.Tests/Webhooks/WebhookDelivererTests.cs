using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Testing;

namespace VicunaBatch.Local.Tests.Webhooks;

/// <summary>Delivery through the SQLite outbox to a real HTTP receiver on 127.0.0.1; every test bounded by a few seconds.</summary>
public sealed class WebhookDelivererTests : IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(8);
    private readonly WebhookRig _rig = new();

    public void Dispose() => _rig.Dispose();

    /// <summary>Independent check of a received request: HMAC-SHA256 by hand over "{id}.{timestamp}.{body}".</summary>
    private static void AssertSignedBy(string secret, ReceivedRequest request)
    {
        var key = Convert.FromBase64String(secret["whsec_".Length..]);
        var signed = Encoding.UTF8.GetBytes(request.Id + "." + request.Timestamp + ".").Concat(request.Body).ToArray();
        Assert.Equal("v1," + Convert.ToBase64String(HMACSHA256.HashData(key, signed)), request.Signature);
        Assert.InRange(long.Parse(request.Timestamp!), DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.ToUnixTimeSeconds());
    }

    [Fact]
    public async Task RunAsync_completedJob_oneSignedEventArrivesOnce()
    {
        await using var receiver = new LoopbackReceiver();
        var job = WebhookRig.CompletedJob(receiver.Url);

        Assert.Equal(WebhookEnqueueResult.Enqueued, await _rig.Enqueuer.EnqueueAsync(job));
        await _rig.RunUntilOutboxEmptyAsync(Limit, settle: TimeSpan.FromMilliseconds(500));

        var request = Assert.Single(receiver.Requests);
        var eventId = WebhookEvent.IdFor(job.Id, WebhookEventType.BatchCompleted);
        Assert.Equal(("POST", "application/json; charset=utf-8", eventId), (request.Method, request.ContentType, request.Id));
        AssertSignedBy(_rig.Secret, request);
        using var body = JsonDocument.Parse(request.Body);
        var root = body.RootElement;
        Assert.Equal((eventId, "event", "batch.completed", 1_700_000_050L), (root.GetProperty("id").GetString(), root.GetProperty("object").GetString(),
            root.GetProperty("type").GetString(), root.GetProperty("created_at").GetInt64()));
        var data = root.GetProperty("data");
        Assert.Equal(("batch_hook1", "completed", 2, "jobs/batch_hook1/output.jsonl"), (data.GetProperty("id").GetString(),
            data.GetProperty("status").GetString(), data.GetProperty("request_counts").GetProperty("completed").GetInt32(), data.GetProperty("output_file_id").GetString()));
        var attempt = Assert.Single(await _rig.Log.ReadAsync(job.Id));
        Assert.Equal((eventId, 1, 200, WebhookAttemptOutcome.Delivered), (attempt.EventId, attempt.Attempt, attempt.StatusCode, attempt.Outcome));
    }

    [Fact]
    public async Task RunAsync_receiverFailsTwice_deliveredOnThirdAttemptAfterScheduledDelays()
    {
        await using var receiver = new LoopbackReceiver(500, 500);
        var job = WebhookRig.CompletedJob(receiver.Url);

        await _rig.Enqueuer.EnqueueAsync(job);
        await _rig.RunUntilOutboxEmptyAsync(Limit);

        var requests = receiver.Requests.ToArray();
        Assert.Equal(3, requests.Length);
        Assert.All(requests, r => AssertSignedBy(_rig.Secret, r));
        Assert.Single(requests.Select(r => Convert.ToBase64String(r.Body)).Distinct());
        for (int i = 1; i < 3; i++)
            Assert.InRange(requests[i].At - requests[i - 1].At, WebhookRig.TestDelays[i - 1], WebhookRig.TestDelays[i - 1] + TimeSpan.FromSeconds(2));
        var log = await _rig.Log.ReadAsync(job.Id);
        Assert.Equal([(1, 500, WebhookAttemptOutcome.Retrying), (2, 500, WebhookAttemptOutcome.Retrying), (3, 200, WebhookAttemptOutcome.Delivered)],
            log.Select(a => (a.Attempt, a.StatusCode ?? 0, a.Outcome)).ToArray());
        Assert.Equal([WebhookRig.TestDelays[0], WebhookRig.TestDelays[1]], log.Take(2).Select(a => a.NextAttemptAt!.Value - a.At).ToArray());
    }

    [Fact]
    public async Task RunAsync_receiverAnswers410_stopsAndLogsDisabled()
    {
        await using var receiver = new LoopbackReceiver(410, 200);
        var job = WebhookRig.CompletedJob(receiver.Url);

        await _rig.Enqueuer.EnqueueAsync(job);
        await _rig.RunUntilOutboxEmptyAsync(Limit, settle: TimeSpan.FromMilliseconds(800));

        Assert.Single(receiver.Requests);
        var attempt = Assert.Single(await _rig.Log.ReadAsync(job.Id));
        Assert.Equal((1, 410, WebhookAttemptOutcome.Disabled), (attempt.Attempt, attempt.StatusCode, attempt.Outcome));
        Assert.Empty(await _rig.Outbox.ReadDeadLettersAsync());
    }

    [Fact]
    public async Task RunAsync_receiverDown_retriedThenGivesUpAfterSchedule()
    {
        var job = WebhookRig.CompletedJob($"http://127.0.0.1:{LoopbackPorts.Free()}/hooks");

        await _rig.Enqueuer.EnqueueAsync(job);
        await _rig.RunUntilOutboxEmptyAsync(Limit);

        var log = await _rig.Log.ReadAsync(job.Id);
        Assert.Equal([(1, WebhookAttemptOutcome.Retrying), (2, WebhookAttemptOutcome.Retrying), (3, WebhookAttemptOutcome.GaveUp)],
            log.Select(a => (a.Attempt, a.Outcome)).ToArray());
        Assert.All(log, a => Assert.StartsWith("connection: connection_error", a.Error));
        Assert.All(log, a => Assert.Null(a.StatusCode));
        Assert.InRange(log[1].At - log[0].At, WebhookRig.TestDelays[0], Limit);
        Assert.InRange(log[2].At - log[1].At, WebhookRig.TestDelays[1], Limit);
        var dead = Assert.Single(await _rig.Outbox.ReadDeadLettersAsync());
        Assert.Equal(WebhookEvent.IdFor(job.Id, WebhookEventType.BatchCompleted), dead.MessageId);
        Assert.Contains("gave up after 3 attempts", dead.Reason);
    }

    [Fact]
    public async Task EnqueueAsync_sameEventTwiceBeforeAndAgainAfterDelivery_deliveredOnce()
    {
        await using var receiver = new LoopbackReceiver();
        var job = WebhookRig.CompletedJob(receiver.Url);

        await _rig.Enqueuer.EnqueueAsync(job);
        await _rig.Enqueuer.EnqueueAsync(job);
        Assert.Equal(1, await _rig.Outbox.CountAsync());
        await _rig.RunUntilOutboxEmptyAsync(Limit);
        await _rig.Enqueuer.EnqueueAsync(job);
        Assert.Equal(1, await _rig.Outbox.CountAsync());
        await _rig.RunUntilOutboxEmptyAsync(Limit, settle: TimeSpan.FromMilliseconds(500));

        Assert.Single(receiver.Requests);
        Assert.Single(await _rig.Log.ReadAsync(job.Id));
    }

    [Fact]
    public async Task DeliverAsync_loopbackNotAllowedAtDelivery_rejectedWithoutSending()
    {
        await using var receiver = new LoopbackReceiver();
        using var strict = new WebhookRig(allowLoopback: false);
        var job = WebhookRig.CompletedJob(receiver.Url);
        await strict.Enqueuer.EnqueueAsync(job);

        var attempt = await strict.Deliverer.DeliverAsync((await strict.Outbox.ReceiveAsync(1)).Single());

        Assert.Equal(WebhookAttemptOutcome.Rejected, attempt!.Outcome);
        Assert.StartsWith("url_loopback:", attempt.Error);
        Assert.Empty(receiver.Requests);
        Assert.Equal(0, await strict.Outbox.CountAsync());
    }

    [Fact]
    public async Task DeliverAsync_hostNameResolvedByPolicy_connectsToResolvedAddress()
    {
        // A raw TCP server on 127.0.0.1: HttpListener would refuse the Host "hooks.test" with 404 before we see it.
        var server = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        server.Start();
        int port = ((IPEndPoint)server.LocalEndpoint).Port;
        var answered = Task.Run(async () =>
        {
            using var client = await server.AcceptTcpClientAsync().WaitAsync(Limit);
            var stream = client.GetStream();
            var head = new StringBuilder();
            var buffer = new byte[4096];
            while (!head.ToString().Contains("\r\n\r\n")) head.Append(Encoding.ASCII.GetString(buffer, 0, await stream.ReadAsync(buffer)));
            await stream.WriteAsync("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray());
            return head.ToString();
        });
        using var rig = new WebhookRig(resolver: new TableResolver(new() { ["hooks.test"] = [IPAddress.Loopback] }));
        var job = WebhookRig.CompletedJob($"http://hooks.test:{port}/hooks/batch");
        await rig.Enqueuer.EnqueueAsync(job);

        var attempt = await rig.Deliverer.DeliverAsync((await rig.Outbox.ReceiveAsync(1)).Single());
        var request = await answered.WaitAsync(Limit);
        server.Stop();

        Assert.Equal((WebhookAttemptOutcome.Delivered, 204), (attempt!.Outcome, attempt.StatusCode));
        Assert.StartsWith("POST /hooks/batch HTTP/1.1", request);
        Assert.Contains($"Host: hooks.test:{port}", request);
    }

    [Fact]
    public async Task DeliverAsync_receiverNeverAnswers_timeoutRecordedAndRetried()
    {
        var silent = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        using var rig = new WebhookRig(timeout: TimeSpan.FromMilliseconds(300));
        var job = WebhookRig.CompletedJob($"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}/hooks");
        await rig.Enqueuer.EnqueueAsync(job);

        var attempt = await rig.Deliverer.DeliverAsync((await rig.Outbox.ReceiveAsync(1)).Single()).WaitAsync(Limit);
        silent.Stop();

        Assert.Equal((WebhookAttemptOutcome.Retrying, (int?)null), (attempt!.Outcome, attempt.StatusCode));
        Assert.StartsWith("timeout:", attempt.Error);
        Assert.Equal(1, await rig.Outbox.CountAsync());
    }

    [Fact]
    public async Task EnqueueAsync_eventNotSubscribedOrNoWebhook_nothingQueued()
    {
        var job = WebhookRig.CompletedJob("https://hooks.example.com/");
        var failedOnly = new BatchJob
        {
            Id = job.Id, Endpoint = job.Endpoint, InputFileId = job.InputFileId, Status = JobStatus.Completed,
            Webhook = new WebhookSettings("https://hooks.example.com/", ["batch.failed"]),
        };
        var noHook = new BatchJob { Id = job.Id, Endpoint = job.Endpoint, InputFileId = job.InputFileId, Status = JobStatus.Completed };

        Assert.Equal(WebhookEnqueueResult.NotSubscribed, await _rig.Enqueuer.EnqueueAsync(failedOnly));
        Assert.Equal(WebhookEnqueueResult.NoWebhook, await _rig.Enqueuer.EnqueueAsync(noHook));
        Assert.Equal(0, await _rig.Outbox.CountAsync());
    }
}

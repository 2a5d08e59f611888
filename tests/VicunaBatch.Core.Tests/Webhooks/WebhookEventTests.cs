using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Core.Tests.Webhooks;

public sealed class WebhookEventTests
{
    private static BatchJob Job(JobStatus status, IReadOnlyList<string>? events = null) => new()
    {
        Id = "batch_1", Endpoint = "/v1/chat/completions", InputFileId = "inputs/in.jsonl", CreatedAt = 1_700_000_000,
        Status = status, CompletedAt = 1_700_000_100, FailedAt = 1_700_000_200, CancelledAt = 1_700_000_300, ExpiredAt = 1_700_000_400,
        OutputFileId = "jobs/batch_1/output.jsonl", RequestCounts = new RequestCounts(3, 2, 1),
        Webhook = new WebhookSettings("https://hooks.example.com/h", events!),
    };

    [Fact]
    public void For_completedJob_exactBody()
    {
        var evt = WebhookEvent.For(Job(JobStatus.Completed));

        Assert.Equal(WebhookEvent.IdFor("batch_1", WebhookEventType.BatchCompleted), evt.Id);
        Assert.Matches("^evt_[0-9a-f]{32}$", evt.Id);
        Assert.Equal(
            $$$"""{"id":"{{{evt.Id}}}","object":"event","type":"batch.completed","created_at":1700000100,"data":{"id":"batch_1","status":"completed","request_counts":{"total":3,"completed":2,"failed":1},"output_file_id":"jobs/batch_1/output.jsonl"}}""",
            evt.ToJson());
    }

    [Theory]
    [InlineData(JobStatus.Completed, "batch.completed", 1_700_000_100)]
    [InlineData(JobStatus.Failed, "batch.failed", 1_700_000_200)]
    [InlineData(JobStatus.Cancelled, "batch.cancelled", 1_700_000_300)]
    [InlineData(JobStatus.Expired, "batch.expired", 1_700_000_400)]
    public void For_terminalStatus_typeAndTerminalTimestamp(JobStatus status, string type, long createdAt)
    {
        var evt = WebhookEvent.For(Job(status));

        Assert.Equal((type, createdAt, status), (evt.Type, evt.CreatedAt, evt.Data.Status));
    }

    [Fact]
    public void For_sameJobTwice_sameIdAndBody_otherTypeOtherId()
    {
        Assert.Equal(WebhookEvent.For(Job(JobStatus.Completed)).ToJson(), WebhookEvent.For(Job(JobStatus.Completed)).ToJson());
        Assert.NotEqual(WebhookEvent.For(Job(JobStatus.Completed)).Id, WebhookEvent.For(Job(JobStatus.Failed)).Id);
        Assert.NotEqual(WebhookEvent.IdFor("batch_1", WebhookEventType.BatchCompleted), WebhookEvent.IdFor("batch_2", WebhookEventType.BatchCompleted));
    }

    [Theory]
    [InlineData(JobStatus.Validating)]
    [InlineData(JobStatus.InProgress)]
    [InlineData(JobStatus.Finalizing)]
    [InlineData(JobStatus.Cancelling)]
    public void For_nonTerminalStatus_throws(JobStatus status) =>
        Assert.Throws<ArgumentException>(() => WebhookEvent.For(Job(status)));

    [Theory]
    [InlineData(null, true)]
    [InlineData(new string[0], true)]
    [InlineData(new[] { "batch.completed" }, true)]
    [InlineData(new[] { "batch.failed", "batch.expired" }, false)]
    public void IsSubscribed_eventsFilter_nullOrEmptyMeansAll(string[]? events, bool expected) =>
        Assert.Equal(expected, WebhookEvent.IsSubscribed(new WebhookSettings("https://h.example.com/", events!), WebhookEventType.BatchCompleted));
}

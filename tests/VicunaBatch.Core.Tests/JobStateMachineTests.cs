using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;

namespace VicunaBatch.Core.Tests;

public class JobStateMachineTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

    private static BatchJob NewJob() => new() { Id = "batch_1", Endpoint = "/v1/completions", InputFileId = "in.jsonl", CreatedAt = 1_699_999_000 };

    [Fact]
    public void Transition_happyPath_stampsEachTimestamp()
    {
        var job = NewJob();

        JobStateMachine.Transition(job, JobStatus.InProgress, Now);
        JobStateMachine.Transition(job, JobStatus.Finalizing, Now.AddSeconds(10));
        JobStateMachine.Transition(job, JobStatus.Completed, Now.AddSeconds(20));

        Assert.Equal((JobStatus.Completed, 1_700_000_000L, 1_700_000_010L, 1_700_000_020L),
            (job.Status, job.InProgressAt, job.FinalizingAt, job.CompletedAt));
        Assert.Null(job.FailedAt);
    }

    [Fact]
    public void Transition_cancelPath_stampsCancellingAndCancelled()
    {
        var job = NewJob();
        JobStateMachine.Transition(job, JobStatus.InProgress, Now);

        JobStateMachine.Transition(job, JobStatus.Cancelling, Now.AddSeconds(1));
        JobStateMachine.Transition(job, JobStatus.Cancelled, Now.AddSeconds(2));

        Assert.Equal((JobStatus.Cancelled, 1_700_000_001L, 1_700_000_002L), (job.Status, job.CancellingAt, job.CancelledAt));
    }

    [Theory]
    [InlineData(JobStatus.Validating, JobStatus.Completed)]
    [InlineData(JobStatus.Validating, JobStatus.Finalizing)]
    [InlineData(JobStatus.InProgress, JobStatus.Completed)]
    [InlineData(JobStatus.InProgress, JobStatus.InProgress)]
    [InlineData(JobStatus.Finalizing, JobStatus.Cancelling)]
    [InlineData(JobStatus.Cancelling, JobStatus.Completed)]
    [InlineData(JobStatus.Completed, JobStatus.InProgress)]
    [InlineData(JobStatus.Failed, JobStatus.Completed)]
    [InlineData(JobStatus.Cancelled, JobStatus.InProgress)]
    [InlineData(JobStatus.Expired, JobStatus.Failed)]
    public void Transition_illegal_throwsNamingBothStates(JobStatus from, JobStatus to)
    {
        var job = NewJob();
        job.Status = from;

        var e = Assert.Throws<JobStateException>(() => JobStateMachine.Transition(job, to, Now));

        Assert.Equal($"job batch_1: illegal transition from {from.SnakeCase()} to {to.SnakeCase()}", e.Message);
        Assert.Equal(from, job.Status);
    }

    [Fact]
    public void IsTerminal_terminalStatuses_true()
    {
        var terminal = Enum.GetValues<JobStatus>().Where(JobStateMachine.IsTerminal).ToArray();

        Assert.Equal([JobStatus.Completed, JobStatus.Failed, JobStatus.Expired, JobStatus.Cancelled], terminal);
    }

    [Fact]
    public void Serialize_newJob_writesOpenAiShapeWithNulls()
    {
        var job = NewJob();
        job.RequestCounts = new RequestCounts(3, 2, 1);

        var json = JsonSerializer.Serialize(job, JobsJson.Options);

        Assert.Equal("""{"id":"batch_1","object":"batch","endpoint":"/v1/completions","model":null,"errors":null,"input_file_id":"in.jsonl","completion_window":"24h","status":"validating","output_file_id":null,"error_file_id":null,"created_at":1699999000,"in_progress_at":null,"expires_at":null,"finalizing_at":null,"completed_at":null,"failed_at":null,"expired_at":null,"cancelling_at":null,"cancelled_at":null,"request_counts":{"total":3,"completed":2,"failed":1},"usage":{"input_tokens":0,"output_tokens":0,"total_tokens":0},"metadata":null,"progress":null,"webhook":null}""", json);
        var back = JsonSerializer.Deserialize<BatchJob>(json, JobsJson.Options)!;
        Assert.Equal(json, JsonSerializer.Serialize(back, JobsJson.Options));
    }

    [Fact]
    public void Serialize_inProgressStatus_isSnakeCase()
    {
        var job = NewJob();
        JobStateMachine.Transition(job, JobStatus.InProgress, Now);

        Assert.Contains("\"status\":\"in_progress\"", JsonSerializer.Serialize(job, JobsJson.Options));
    }
}

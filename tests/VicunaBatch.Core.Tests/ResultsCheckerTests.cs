using System.Text;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Core.Tests;

/// <summary>The checker on small hand-made result files: whole results pass, every kind of loss or doubling is named.</summary>
public sealed class ResultsCheckerTests
{
    // lines 1-3 valid (a, b, c), line 4 broken JSON, line 5 a duplicate of "a"
    private const string Input = """
        {"custom_id":"a","prompt":"x"}
        {"custom_id":"b","prompt":"y"}
        {"custom_id":"c","prompt":"z"}
        {not json
        {"custom_id":"a","prompt":"again"}
        """;

    private static string Out(string id) => $$$"""{"id":"batch_req_{{{id}}}","custom_id":"{{{id}}}","response":{"status_code":200,"body":{}},"error":null}""";

    private static string Err(string id, int line, string code = "invalid_json") =>
        $$$"""{"id":"batch_req_{{{line}}}","custom_id":"{{{id}}}","response":{"status_code":400,"request_id":"req_{{{line}}}","body":{"error":{"message":"m","type":"invalid_request_error","param":null,"code":"{{{code}}}","line":{{{line}}}""" + "}}},\"error\":null}";

    private static string Job(int total, int completed, int failed) =>
        $$$"""{"id":"batch_1","object":"batch","status":"completed","request_counts":{"total":{{{total}}},"completed":{{{completed}}},"failed":{{{failed}}}}}""";

    private static readonly string[] WholeOutput = [Out("a"), Out("b")];
    private static readonly string[] WholeErrors = [Err("c", 3, "execution_failed"), Err("line-4", 4), Err("a", 5, "duplicate_custom_id")];

    [Fact]
    public async Task Whole_results_have_no_problems_and_the_counts()
    {
        var report = await CheckAsync(WholeOutput, WholeErrors, Job(5, 2, 3));
        Assert.Empty(report.Problems);
        Assert.True(report.IsWhole);
        Assert.Equal((3, 2, 2, 3), (report.NumValidRequests, report.NumRejectedLines, report.NumOutputLines, report.NumErrorLines));
    }

    [Fact]
    public async Task A_lost_request_and_the_count_it_breaks_are_named()
    {
        var report = await CheckAsync([Out("a")], WholeErrors, Job(5, 2, 3));
        Assert.Equal(
            ["custom_id \"b\" is in neither output.jsonl nor errors.jsonl", "job.json: request_counts.completed is 2, but there are 1 output.jsonl lines"],
            report.Problems);
    }

    [Fact]
    public async Task A_request_in_both_files_or_twice_is_named_with_where()
    {
        var report = await CheckAsync([Out("a"), Out("b"), Out("b")], [.. WholeErrors, Err("a", 1, "execution_failed")], Job(5, 3, 4));
        Assert.Contains("output.jsonl:3: custom_id \"b\" already in output.jsonl:2", report.Problems);
        Assert.Contains("errors.jsonl:4: custom_id \"a\" already in output.jsonl:1", report.Problems);
        Assert.Equal(2, report.Problems.Count);
    }

    [Fact]
    public async Task An_unknown_id_and_a_rejected_line_left_out_are_named()
    {
        var report = await CheckAsync([.. WholeOutput, Out("zzz")], [WholeErrors[0], WholeErrors[2]], Job(5, 3, 2));
        Assert.Contains("output.jsonl:3: custom_id \"zzz\" is not a valid request of the input", report.Problems);
        Assert.Contains("input line 4 (custom_id \"line-4\") was rejected but is not in errors.jsonl", report.Problems);
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, true)]
    [InlineData(2, false)]
    public async Task The_webhook_log_must_hold_exactly_one_terminal_event_for_the_job(int numEvents, bool whole)
    {
        string Event(int i) => $$$"""{"id":"evt_{{{i}}}","object":"event","type":"batch.completed","data":{"id":"batch_1","status":"completed"}}""";
        // a redelivery of the same event id, and another job's event, do not count
        var log = Enumerable.Range(0, numEvents).Select(Event)
            .Concat(numEvents > 0 ? [Event(0)] : [])
            .Append("""{"id":"evt_x","type":"batch.completed","data":{"id":"batch_2"}}""");
        var report = await CheckAsync(WholeOutput, WholeErrors, Job(5, 2, 3), log);
        Assert.Equal(numEvents, report.NumTerminalEvents);
        Assert.Equal(whole, report.IsWhole);
    }

    private static Task<CheckReport> CheckAsync(IEnumerable<string> output, IEnumerable<string> errors, string job, IEnumerable<string>? webhookLog = null) =>
        new ResultsChecker(new InputOptions()).CheckAsync(
            Stream(Input), InputFormat.Jsonl, Stream(string.Join('\n', output)), Stream(string.Join('\n', errors)), Stream(job),
            webhookLog is null ? null : Stream(string.Join('\n', webhookLog)));

    private static MemoryStream Stream(string text) => new(Encoding.UTF8.GetBytes(text));
}

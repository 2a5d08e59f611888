using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Core.Tests;

public class OutputLinesTests
{
    private static readonly DateTimeOffset Created = DateTimeOffset.FromUnixTimeSeconds(1_700_000_123);

    private static BatchRequest Request(BatchEndpoint endpoint) => new()
    {
        CustomId = "req-1", LineNumber = 4, Endpoint = endpoint,
        Prompt = endpoint == BatchEndpoint.Completions ? "Hi" : null,
        Messages = endpoint == BatchEndpoint.ChatCompletions ? [new ChatTurn("user", "Hi")] : [],
    };

    [Fact]
    public void FormatOutput_chatOutcome_isByteIdenticalOpenAiLine()
    {
        var outcome = RequestOutcome.Success(Request(BatchEndpoint.ChatCompletions), "vicuna-13b", "Hello \"you\"\n", FinishReason.Stop, 5, 3, Created);

        var line = OutputLines.FormatOutput("batch_abc", outcome);

        var id = OutputLines.DerivedId("batch_abc", "req-1", "batch_req");
        var requestId = OutputLines.DerivedId("batch_abc", "req-1", "request");
        var bodyId = OutputLines.DerivedId("batch_abc", "req-1", "completion");
        Assert.Equal($$$$"""{"id":"batch_req_{{{{id}}}}","custom_id":"req-1","response":{"status_code":200,"request_id":"req_{{{{requestId}}}}","body":{"id":"chatcmpl-{{{{bodyId}}}}","object":"chat.completion","created":1700000123,"model":"vicuna-13b","choices":[{"index":0,"message":{"role":"assistant","content":"Hello \"you\"\n","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"{{{{OutputBodies.SystemFingerprint("vicuna-13b")}}}}"}},"error":null}""", line);
        Assert.Equal(24, id.Length);
    }

    [Fact]
    public void FormatOutput_completionOutcome_isTextCompletion()
    {
        var outcome = RequestOutcome.Success(Request(BatchEndpoint.Completions), "m", "there", FinishReason.Length, 2, 16, Created);

        var line = OutputLines.FormatOutput("batch_abc", outcome);

        var bodyId = OutputLines.DerivedId("batch_abc", "req-1", "completion");
        Assert.EndsWith("\"body\":" + $$$$"""{"id":"cmpl-{{{{bodyId}}}}","object":"text_completion","created":1700000123,"model":"m","system_fingerprint":"{{{{OutputBodies.SystemFingerprint("m")}}}}","choices":[{"text":"there","index":0,"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":2,"completion_tokens":16,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}""" + "}},\"error\":null}", line);
    }

    [Fact]
    public void SystemFingerprint_sameModel_hashedOnceAndTheSameStringEveryLine()
    {
        Assert.Same(OutputBodies.SystemFingerprint("m-fingerprint"), OutputBodies.SystemFingerprint("m-fingerprint"));
        Assert.NotEqual(OutputBodies.SystemFingerprint("m-fingerprint"), OutputBodies.SystemFingerprint("m-other"));
        Assert.Matches("^fp_[0-9a-f]{10}$", OutputBodies.SystemFingerprint("m-fingerprint"));
    }

    [Fact]
    public void FormatOutput_sameJobAndCustomId_sameLineEveryTime()
    {
        var outcome = RequestOutcome.Success(Request(BatchEndpoint.Completions), "m", "x", FinishReason.Stop, 1, 1, Created);

        Assert.Equal(OutputLines.FormatOutput("batch_abc", outcome), OutputLines.FormatOutput("batch_abc", outcome));
        Assert.NotEqual(OutputLines.FormatOutput("batch_abc", outcome), OutputLines.FormatOutput("batch_xyz", outcome));
    }

    [Fact]
    public void FormatError_failedOutcome_isResponseShapeWithOpenAiErrorBody()
    {
        var outcome = RequestOutcome.Failure(Request(BatchEndpoint.Completions), RequestErrorCode.ContextLengthExceeded, "prompt is 5000 tokens; context is 4096", Created);

        var line = OutputLines.FormatError("batch_abc", ErrorLine.From(outcome));

        var id = OutputLines.DerivedId("batch_abc", "req-1", "batch_req");
        var requestId = OutputLines.DerivedId("batch_abc", "req-1", "request");
        Assert.Equal($$$$"""{"id":"batch_req_{{{{id}}}}","custom_id":"req-1","response":{"status_code":400,"request_id":"req_{{{{requestId}}}}","body":{"error":{"message":"prompt is 5000 tokens; context is 4096","type":"invalid_request_error","param":"prompt","code":"context_length_exceeded"}}},"error":null}""", line);
    }

    [Fact]
    public void FormatError_executionFailure_isServerErrorWith500()
    {
        var outcome = RequestOutcome.Failure(Request(BatchEndpoint.ChatCompletions), RequestErrorCode.ExecutionFailed, "boom", Created);

        var line = OutputLines.FormatError("batch_abc", ErrorLine.From(outcome));

        Assert.Contains("\"response\":{\"status_code\":500,", line);
        Assert.EndsWith("\"body\":" + """{"error":{"message":"boom","type":"server_error","param":null,"code":"execution_failed"}}},"error":null}""", line);
    }

    [Fact]
    public void FormatError_lineError_keepsSnakeCaseCodeAndInputLineInTheErrorBody()
    {
        var line = OutputLines.FormatError("batch_abc", ErrorLine.From(new LineError(9, "line-9", LineErrorCode.InvalidJson, "invalid JSON")));

        var key = OutputLines.RejectedLineKey(9);
        var id = OutputLines.DerivedId("batch_abc", key, "batch_req");
        var requestId = OutputLines.DerivedId("batch_abc", key, "request");
        Assert.Equal($$$$"""{"id":"batch_req_{{{{id}}}}","custom_id":"line-9","response":{"status_code":400,"request_id":"req_{{{{requestId}}}}","body":{"error":{"message":"invalid JSON","type":"invalid_request_error","param":null,"code":"invalid_json","line":9}}},"error":null}""", line);
    }

    [Fact]
    public void FormatError_requestThatNeverRan_hasNoResponseAndTheBatchLevelError()
    {
        var error = ErrorLine.ForRequest("req-1", 4, BatchEndpoint.ChatCompletions, RequestErrorCode.BatchExpired, "expired");

        var line = OutputLines.FormatError("batch_abc", error);

        var id = OutputLines.DerivedId("batch_abc", "req-1", "batch_req");
        Assert.Equal($$$$"""{"id":"batch_req_{{{{id}}}}","custom_id":"req-1","response":null,"error":{"code":"batch_expired","message":"expired"}}""", line);
    }
}

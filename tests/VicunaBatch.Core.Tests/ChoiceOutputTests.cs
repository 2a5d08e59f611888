using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Core.Tests;

/// <summary>Output bodies with several choices and with log probabilities, in OpenAI's two shapes.</summary>
public class ChoiceOutputTests
{
    private static readonly DateTimeOffset Created = DateTimeOffset.FromUnixTimeSeconds(1_700_000_123);

    private static readonly TokenLogprob Hello = new("Hello", -0.25, [72, 101, 108, 108, 111], 0,
        [new TopLogprob("Hello", -0.25, [72, 101, 108, 108, 111]), new TopLogprob(" Hi", -1.5, [32, 72, 105])]);

    private static readonly TokenLogprob Bang = new("!", -0.5, [33], 5, [new TopLogprob("!", -0.5, [33])]);

    private static RequestOutcome Outcome(BatchEndpoint endpoint, IReadOnlyList<OutcomeChoice> choices)
    {
        var request = new BatchRequest
        {
            CustomId = "req-1", LineNumber = 4, Endpoint = endpoint,
            Prompt = endpoint == BatchEndpoint.Completions ? "Hi" : null,
            Messages = endpoint == BatchEndpoint.ChatCompletions ? [new ChatTurn("user", "Hi")] : [],
        };
        return RequestOutcome.Success(request, "m", choices[0].Text, choices[0].FinishReason, 2, 3, Created) with { Choices = choices };
    }

    private static JsonElement Body(RequestOutcome outcome) =>
        JsonDocument.Parse(OutputLines.FormatOutput("batch_abc", outcome)).RootElement.GetProperty("response").GetProperty("body");

    [Fact]
    public void FormatOutput_severalChoices_writesEachWithItsIndex()
    {
        var body = Body(Outcome(BatchEndpoint.Completions, [new("a", FinishReason.Stop), new("b", FinishReason.Length)]));

        Assert.Equal("""[{"index":0,"text":"a","finish_reason":"stop"},{"index":1,"text":"b","finish_reason":"length"}]""", body.GetProperty("choices").GetRawText());
    }

    [Fact]
    public void FormatOutput_chatLogprobs_isContentOfTokensWithTopLogprobs()
    {
        var body = Body(Outcome(BatchEndpoint.ChatCompletions, [new("Hello!", FinishReason.Stop, [Hello, Bang])]));

        Assert.Equal(
            """{"content":[{"token":"Hello","logprob":-0.25,"bytes":[72,101,108,108,111],"top_logprobs":[{"token":"Hello","logprob":-0.25,"bytes":[72,101,108,108,111]},{"token":" Hi","logprob":-1.5,"bytes":[32,72,105]}]},{"token":"!","logprob":-0.5,"bytes":[33],"top_logprobs":[{"token":"!","logprob":-0.5,"bytes":[33]}]}],"refusal":null}""",
            body.GetProperty("choices")[0].GetProperty("logprobs").GetRawText());
    }

    [Fact]
    public void FormatOutput_completionsLogprobs_isTokensLogprobsTopAndOffsets()
    {
        var body = Body(Outcome(BatchEndpoint.Completions, [new("Hello!", FinishReason.Stop, [Hello, Bang])]));

        Assert.Equal(
            """{"tokens":["Hello","!"],"token_logprobs":[-0.25,-0.5],"top_logprobs":[{"Hello":-0.25," Hi":-1.5},{"!":-0.5}],"text_offset":[0,5]}""",
            body.GetProperty("choices")[0].GetProperty("logprobs").GetRawText());
    }

    [Fact]
    public void Checkpoint_outcomeWithChoices_roundTrips()
    {
        var outcome = Outcome(BatchEndpoint.ChatCompletions, [new("Hello!", FinishReason.Stop, [Hello, Bang]), new("x", FinishReason.Length)]);

        var back = JsonSerializer.Deserialize<RequestOutcome>(JsonSerializer.Serialize(outcome, ResultsJson.Options), ResultsJson.Options)!;

        Assert.Equal(OutputLines.FormatOutput("batch_abc", outcome), OutputLines.FormatOutput("batch_abc", back));
    }
}

namespace VicunaBatch.Core.Results;

/// <summary>
/// One choice of a successful request: a completion of one of its prompts. Choices are indexed across prompts, as
/// OpenAI's completions are: prompt p's choice j is index p × n + j.
/// </summary>
/// <param name="Logprobs">One entry per output token when the request asked for log probabilities; else null.</param>
public sealed record OutcomeChoice(string Text, FinishReason FinishReason, IReadOnlyList<TokenLogprob>? Logprobs = null);

/// <summary>
/// A generated token's log probability and the most likely tokens at its step. <see cref="Token"/> is its text,
/// <see cref="Bytes"/> its UTF-8 bytes (a byte token's one byte, which alone may be no whole character);
/// <see cref="TextOffset"/> where its text starts in the choice's text.
/// </summary>
public sealed record TokenLogprob(string Token, double Logprob, IReadOnlyList<int> Bytes, int TextOffset, IReadOnlyList<TopLogprob> Top);

/// <summary>One of the most likely tokens at a step (<see cref="TokenLogprob.Top"/>).</summary>
public sealed record TopLogprob(string Token, double Logprob, IReadOnlyList<int> Bytes);

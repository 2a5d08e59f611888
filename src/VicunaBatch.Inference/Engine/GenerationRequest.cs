namespace VicunaBatch.Inference.Engine;

/// <summary>How the next token is chosen. Temperature 0 is greedy.</summary>
/// <param name="Temperature">0 = greedy (argmax); otherwise logits are divided by it before softmax.</param>
/// <param name="TopK">Keep the K most likely tokens; 0 = all.</param>
/// <param name="TopP">Keep the smallest set whose probability reaches P; 1 = all.</param>
/// <param name="Seed">Same seed → same tokens, whatever else is in the batch; null = random.</param>
public sealed record SamplingParams(float Temperature = 0f, int TopK = 0, float TopP = 1f, ulong? Seed = null)
{
    public static SamplingParams Greedy { get; } = new();

    /// <summary>Temperature 0 — or one so small that 1 / T overflows float, which is the argmax too.</summary>
    public bool IsGreedy => !(Temperature > 0f) || float.IsInfinity(1f / Temperature);

    /// <summary>
    /// Choice <paramref name="choice"/>'s sampling (<see cref="GenerationRequest.NumChoices"/>): a seeded request's choices
    /// draw with seeds seed, seed + 1, …, so they differ from each other and each repeats with its seed.
    /// </summary>
    public SamplingParams ForChoice(int choice) =>
        choice == 0 || Seed is not { } seed ? this : this with { Seed = unchecked(seed + (ulong)choice) };

    /// <summary>Top-k removes tokens from a vocabulary of <paramref name="vocab"/>: 0 &lt; k &lt; vocab.</summary>
    public bool CutsTopK(int vocab) => TopK > 0 && TopK < vocab;
}

/// <summary>One generation request as the engine sees it: token ids in, token ids out.</summary>
/// <param name="Id">Caller's id, returned on the result.</param>
/// <param name="PromptIds">Prompt token ids, BOS included when the model wants one.</param>
/// <param name="MaxTokens">Upper bound of generated tokens.</param>
/// <param name="Stop">Stop strings (need a tokenizer); the text is cut before the first match.</param>
/// <param name="IgnoreEos">Keep generating past EOS (benchmarks with random weights).</param>
/// <param name="ReturnLogits">Copy the logits of every sampled step onto <see cref="GenerationResult.Logits"/> (verification; costs a vocab-sized copy per token).</param>
/// <param name="Grammar">
/// Constrain the output to this JSON grammar: tokens it cannot read are masked on the host each step, end of sequence
/// only once the value is whole. <c>max_tokens</c> or the context may still cut it short (<see cref="FinishReason.Length"/>).
/// Needs a tokenizer.
/// </param>
/// <param name="TopLogprobs">
/// Null: none. Else each generated token's log probability and the <c>TopLogprobs</c> (0..<see cref="TokenLogprobs.MaxTop"/>)
/// most likely tokens at its step, on <see cref="GenerationResult.Logprobs"/>. Its tokens are picked on the host from
/// the step's logits row, which is where the log-softmax is taken.
/// </param>
/// <param name="NumChoices">
/// n: this many generations of the prompt (1 to <see cref="MaxChoices"/>), one result each (<see cref="GenerationResult.Choice"/>).
/// They share the prompt's prefill: it is computed once, then its KV is forked (<see cref="IStepRunner.CopyKv"/>) and
/// each choice samples its first token from the same logits. Choice c samples with <see cref="SamplingParams.ForChoice"/>.
/// A choice that finds no KV memory free at the fork waits and computes the prompt itself; a runner that cannot copy
/// KV computes it for every choice.
/// </param>
public sealed record GenerationRequest(
    string Id,
    IReadOnlyList<int> PromptIds,
    int MaxTokens,
    SamplingParams? Sampling = null,
    IReadOnlyList<string>? Stop = null,
    bool IgnoreEos = false,
    bool ReturnLogits = false,
    Grammar.JsonGrammar? Grammar = null,
    int? TopLogprobs = null,
    int NumChoices = 1)
{
    /// <summary>Most choices of one request (OpenAI's <c>n</c> allows 128).</summary>
    public const int MaxChoices = 128;
}

public enum FinishReason
{
    /// <summary>EOS or a stop string.</summary>
    Stop,

    /// <summary><c>max_tokens</c> or the end of the context.</summary>
    Length,

    /// <summary>The request could not run; see <see cref="GenerationResult.Error"/>.</summary>
    Error,

    /// <summary>Cancelled by the caller or by shutdown.</summary>
    Cancelled,
}

/// <summary>Why a request ended in <see cref="FinishReason.Error"/>.</summary>
public enum GenerationErrorKind
{
    None,

    /// <summary>The prompt leaves no room to generate within the context.</summary>
    PromptTooLong,

    /// <summary>Empty prompt, token ids outside the vocabulary, bad limits, stop strings or a grammar without a tokenizer, a grammar the vocabulary cannot write.</summary>
    InvalidRequest,

    /// <summary>The model failed to run the step the request was in.</summary>
    ModelFailure,
}

/// <summary>What one request produced.</summary>
/// <param name="OutputIds">Generated ids, EOS excluded.</param>
/// <param name="Text">Decoded text (cut at a stop string), or null when the package has no tokenizer.</param>
/// <param name="Logits">
/// With <see cref="GenerationRequest.ReturnLogits"/>: the raw logits (before temperature, top-k, top-p) of every sampled step,
/// [steps][vocab]; row i chose <c>OutputIds[i]</c>, and a request that stopped on EOS has one row more, the one that chose EOS.
/// Null otherwise.
/// </param>
/// <param name="Logprobs">With <see cref="GenerationRequest.TopLogprobs"/>: one entry per <see cref="OutputIds"/> item. Null otherwise.</param>
/// <param name="Choice">Which of the request's <see cref="GenerationRequest.NumChoices"/> this is.</param>
public sealed record GenerationResult(
    string Id,
    IReadOnlyList<int> OutputIds,
    string? Text,
    FinishReason FinishReason,
    int PromptTokens,
    string? Error = null,
    TimeSpan TimeToFirstToken = default,
    TimeSpan Latency = default,
    GenerationErrorKind ErrorKind = GenerationErrorKind.None,
    IReadOnlyList<float[]>? Logits = null,
    IReadOnlyList<TokenLogprobs>? Logprobs = null,
    int Choice = 0)
{
    public int CompletionTokens => OutputIds.Count;
}

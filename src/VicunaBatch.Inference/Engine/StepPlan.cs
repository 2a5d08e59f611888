using System.Collections.Immutable;

namespace VicunaBatch.Inference.Engine;

/// <summary>One decode this step: <paramref name="TokenId"/> (the last one generated) fed at position <paramref name="PastLength"/>.</summary>
/// <param name="Place">Where the sequence's KV lives; it holds room for PastLength + 1 tokens.</param>
public readonly record struct DecodeRow(long SequenceId, int TokenId, int PastLength, KvPlace Place);

/// <summary>A chunk of one prompt this step.</summary>
/// <param name="TokenIds">Prompt tokens at positions [PastLength, PastLength + TokenIds.Length) (after a preemption: prompt ++ output).</param>
/// <param name="NeedsLogits">The last chunk of the prompt: its last position's logits pick the next output token.</param>
/// <param name="Place">Where the sequence's KV lives; it holds room for PastLength + TokenIds.Length tokens.</param>
public sealed record PrefillChunk(long SequenceId, int PastLength, ImmutableArray<int> TokenIds, bool NeedsLogits, KvPlace Place);

/// <summary>A running sequence that gets no token this step (a prompt the token budget left for later): its KV and its length.</summary>
public readonly record struct IdleSequence(long SequenceId, int Length, KvPlace Place);

/// <summary>
/// What the scheduler decided for one step: decodes (oldest first), then prompt chunks (continuing prompts oldest
/// first, then admissions). Every row names where its sequence's KV lives; how a runner packs the rows into calls is
/// its own business.
/// </summary>
public sealed record StepPlan(ImmutableArray<DecodeRow> DecodeRows, ImmutableArray<PrefillChunk> Prefills)
{
    /// <summary>
    /// The other running sequences, which hold KV but get no token this step: a runner that pads its calls with rows
    /// of no sequence must not write over their KV.
    /// </summary>
    public ImmutableArray<IdleSequence> Idle { get; init; } = [];

    /// <summary>
    /// Sequences whose next token the runner picks in its graphs, so no logits row of theirs comes to the host: greedy
    /// ones when it <see cref="IStepRunner.SelectsGreedyInGraph"/>, sampled ones when it
    /// <see cref="IStepRunner.SamplesInGraph"/>, never one that reads its logits row (<see cref="GenerationRequest.ReturnLogits"/>,
    /// a grammar, or <see cref="GenerationRequest.TopLogprobs"/> unless the runner <see cref="IStepRunner.TakesLogprobsInGraph"/>).
    /// Filled by the engine; the runner returns their tokens in <see cref="StepOutputs.Tokens"/> and, for those that
    /// take them, their log probabilities in <see cref="StepOutputs.Logprobs"/>.
    /// </summary>
    public IReadOnlyDictionary<long, GraphPick> GraphPicks { get; init; } = ImmutableDictionary<long, GraphPick>.Empty;

    /// <summary>Prompt tokens the requests admitted this step took from the prefix cache instead of computing them.</summary>
    public int NumCachedTokens { get; init; }

    /// <summary>
    /// KV of requests preempted this step to host memory (<see cref="IStepRunner.SwapOut"/>): device block
    /// <c>From</c> to host block <c>To</c>. Made before <see cref="SwapIns"/> and before the step runs: the step may
    /// write into the blocks they leave.
    /// </summary>
    public ImmutableArray<KvUnitCopy> SwapOuts { get; init; } = [];

    /// <summary>KV of requests resumed this step from host memory (<see cref="IStepRunner.SwapIn"/>): host block <c>From</c> to device block <c>To</c>.</summary>
    public ImmutableArray<KvUnitCopy> SwapIns { get; init; } = [];

    public bool IsEmpty => DecodeRows.IsEmpty && Prefills.IsEmpty;

    public int NumDecodes => DecodeRows.Length;

    public int NumScheduledTokens => NumDecodes + Prefills.Sum(p => p.TokenIds.Length);
}

/// <summary>How the runner's graphs pick one sequence's next token (<see cref="StepPlan.GraphPicks"/>).</summary>
/// <param name="Sampling">Greedy: the decoder's argmax (<c>greedy_ids</c>); else drawn by <c>sampler.onnx</c>.</param>
/// <param name="Uniform">The request's draw for this token (<see cref="Sampler.Uniform"/>); unused when greedy.</param>
/// <param name="TakesLogprobs">The request asks for log probabilities: <c>logprobs.onnx</c> takes them over the same logits
/// once the token is picked (<see cref="IStepRunner.TakesLogprobsInGraph"/>).</param>
public readonly record struct GraphPick(SamplingParams Sampling, float Uniform, bool TakesLogprobs = false);

/// <summary>
/// The next token of every sequence that makes one this step: row i is <c>SequenceIds[i]</c>'s. Either the runner
/// picked it (<c>Tokens[i]</c> ≥ 0, for <see cref="StepPlan.GraphPicks"/>), or row i of <c>Logits</c> ([n, vocab],
/// possibly longer) holds its logits for the engine to sample from. The runner may reuse the array for its next step.
/// </summary>
public sealed record StepOutputs(ImmutableArray<long> SequenceIds, float[] Logits, int VocabSize)
{
    /// <summary>Per row, the token the runner picked, or −1: sample from the row's logits. Default (not set): every row's logits are there.</summary>
    public ImmutableArray<int> Tokens { get; init; }

    /// <summary>
    /// Per row, the log probabilities <c>logprobs.onnx</c> took for a <see cref="GraphPick.TakesLogprobs"/> pick (the chosen
    /// token and the <see cref="TokenLogprobs.MaxTop"/> most likely), or null. Default (not set): none was taken.
    /// </summary>
    public ImmutableArray<TokenLogprobs?> Logprobs { get; init; }

    /// <summary>Rows of <c>Logits</c> the runner filled this step: logits rows brought to the host for the engine to read.</summary>
    public int NumLogitRowsRead { get; init; }

    /// <summary>Runs of <c>sampler.onnx</c> this step took, and their wall time.</summary>
    public int GraphSamplings { get; init; }

    public TimeSpan GraphSamplingTime { get; init; }

    /// <summary>Runs of <c>logprobs.onnx</c> this step took, and their wall time.</summary>
    public int GraphLogprobRuns { get; init; }

    public TimeSpan GraphLogprobTime { get; init; }

    public ReadOnlySpan<float> LogitsOf(int row) => Logits.AsSpan(row * VocabSize, VocabSize);

    /// <summary>The runner's token for row <paramref name="row"/>, if it picked one.</summary>
    public bool TryGetToken(int row, out int token)
    {
        token = Tokens.IsDefault ? -1 : Tokens[row];
        return token >= 0;
    }

    /// <summary>The log probabilities the runner took for row <paramref name="row"/>, if it took them.</summary>
    public bool TryGetLogprobs(int row, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out TokenLogprobs? logprobs)
    {
        logprobs = Logprobs.IsDefault ? null : Logprobs[row];
        return logprobs is not null;
    }
}

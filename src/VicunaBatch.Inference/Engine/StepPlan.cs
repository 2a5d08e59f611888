using System.Collections.Immutable;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// One row of the batched decode call. Row r binds KV slot r. Filler rows (no sequence) keep the call
/// rectangular: they feed <c>TokenId</c> 0 at the slot's current length, a position the slot's next real
/// step overwrites.
/// </summary>
public readonly record struct DecodeRow(long SequenceId, int TokenId, int PastLength)
{
    public const long Filler = -1;

    public bool IsFiller => SequenceId == Filler;
}

/// <summary>
/// A chunk of one prompt. Slots (GQA): run in its own batch-1 call on its slot (GQA shape rules). Blocks (paged):
/// <c>Slot</c> is -1 and the chunk is packed into the step's one call with every other scheduled request.
/// </summary>
/// <param name="TokenIds">Prompt tokens at positions [PastLength, PastLength + TokenIds.Length) (after a preemption: prompt ++ output).</param>
/// <param name="NeedsLogits">The last chunk of the prompt: its last position's logits pick the next output token.</param>
public sealed record PrefillChunk(long SequenceId, int Slot, int PastLength, ImmutableArray<int> TokenIds, bool NeedsLogits);

/// <summary>
/// What the scheduler decided for one step. Slots (GQA): decode rows cover slots [0, DecodeRows.Length), fillers
/// included. Blocks (paged): decode rows are only real decodes, and <see cref="BlockTables"/> holds the block table of
/// every scheduled request.
/// </summary>
public sealed record StepPlan(ImmutableArray<DecodeRow> DecodeRows, ImmutableArray<PrefillChunk> Prefills)
{
    /// <summary>
    /// Paged KV only: each scheduled sequence's block ids in position order, covering its past and this step's tokens.
    /// Empty for KV slots.
    /// </summary>
    public ImmutableDictionary<long, ImmutableArray<int>> BlockTables { get; init; } = ImmutableDictionary<long, ImmutableArray<int>>.Empty;

    /// <summary>
    /// Sequences whose next token is the argmax and that need no logits on the host (greedy, no
    /// <see cref="GenerationRequest.ReturnLogits"/>). Filled by the engine only for a runner that
    /// <see cref="IStepRunner.SelectsGreedyInGraph"/>: such a runner returns just their ids in
    /// <see cref="StepOutputs.GreedyIds"/> and copies no logits row down for them.
    /// </summary>
    public ImmutableHashSet<long> GreedyOnly { get; init; } = ImmutableHashSet<long>.Empty;

    public bool IsEmpty => DecodeRows.IsEmpty && Prefills.IsEmpty;

    public int NumDecodes => DecodeRows.Count(r => !r.IsFiller);

    public int NumScheduledTokens => NumDecodes + Prefills.Sum(p => p.TokenIds.Length);
}

/// <summary>
/// Logits for every sequence that samples this step: row i of <c>Logits</c> ([n, vocab], possibly longer) is
/// <c>SequenceIds[i]</c>'s. The runner may reuse the array for its next step. With <see cref="GreedyIds"/> (a runner
/// that picks the argmax on the device), row i of a sequence in <see cref="StepPlan.GreedyOnly"/> holds no logits:
/// <c>GreedyIds[i]</c> is its token.
/// </summary>
public sealed record StepOutputs(ImmutableArray<long> SequenceIds, float[] Logits, int VocabSize)
{
    /// <summary>Per row, the argmax token picked on the device; default (not set) when the runner copied every row.</summary>
    public ImmutableArray<int> GreedyIds { get; init; }

    public ReadOnlySpan<float> LogitsOf(int row) => Logits.AsSpan(row * VocabSize, VocabSize);
}

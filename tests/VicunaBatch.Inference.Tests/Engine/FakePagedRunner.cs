using System.Collections.Immutable;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// An <see cref="IStepRunner"/> over a paged KV cache that keeps its "keys" in real blocks: every fed token is written
/// at (block_table[p / blockSize], p % blockSize), and every step reads each request's whole history back through
/// its block table. The next token is a fixed function of that history (<see cref="NextToken"/>), so a request's
/// greedy ids depend only on its own tokens, as with a real model. As a real model's keys and values, each written
/// entry depends on every token before it (it carries a hash of the writer's history up to it), so a block is good for
/// any request whose tokens up to there are the same: its own, the request it was forked from, or one of the same prefix
/// (the prefix cache). Throws when a plan breaks the paged contract: a past length that is not what the blocks hold
/// (an entry missing, or written after other tokens than the ones read before it), a table too short, a step writing
/// into a block that another request of the step holds (forks and cached prefixes share whole blocks only).
/// With <c>greedyOnDevice</c> it acts as a graph with an argmax output: the id of every row in
/// <see cref="StepPlan.GraphPicks"/> in <see cref="StepOutputs.Tokens"/>, and for those rows a logits row that points
/// at the wrong token, so an engine that sampled from it would go wrong. With <c>numSwapBlocks</c> it keeps that many
/// host blocks and swaps entries between them and the device blocks (<see cref="SwapOut"/>, <see cref="SwapIn"/>):
/// a block that was not copied back reads as never written.
/// </summary>
internal sealed class FakePagedRunner(int numBlocks, int blockSize, int maxBatchSize, int maxLength, int vocabSize = 97, bool greedyOnDevice = false,
    int numSwapBlocks = 0) : IStepRunner
{
    private readonly (long SequenceId, int Token, long History)?[][] _blocks =
        Enumerable.Range(0, numBlocks).Select(_ => new (long, int, long)?[blockSize]).ToArray();
    private readonly (long SequenceId, int Token, long History)?[][] _host =
        Enumerable.Range(0, numSwapBlocks).Select(_ => new (long, int, long)?[blockSize]).ToArray();

    public int VocabSize => vocabSize;

    public int NumSlots => maxBatchSize;

    public int MaxLength => maxLength;

    public long KvCacheBytes => 0;

    public int KvElementBytes => 4;

    public int ActivationElementBytes => 4;

    /// <summary>Block tables over this runner's blocks, as <c>PagedVariant</c> opens them with a <c>PagedRunner</c>.</summary>
    public BlockTables NewBlockTables(bool prefixCache = false) => new(numBlocks, blockSize, maxLength, prefixCache, numSwapBlocks);

    public int NumSwapBlocks => numSwapBlocks;

    /// <summary>Swap copies made, out and in, in order.</summary>
    public List<(bool Out, KvUnitCopy Copy)> Swaps { get; } = [];

    public void SwapOut(ImmutableArray<KvUnitCopy> copies)
    {
        foreach (var copy in copies)
        {
            Swaps.Add((true, copy));
            for (var row = 0; row < blockSize; row++)
            {
                // rows past the copy's are left behind: a swap-in that needed them finds nothing there
                _host[copy.To][row] = row < copy.NumTokens
                    ? _blocks[copy.From][row] ?? throw new InvalidOperationException($"swap-out of block {copy.From}: row {row} was never written")
                    : null;
            }
        }
    }

    public void SwapIn(ImmutableArray<KvUnitCopy> copies)
    {
        foreach (var copy in copies)
        {
            Swaps.Add((false, copy));
            for (var row = 0; row < copy.NumTokens; row++)
            {
                _blocks[copy.To][row] = _host[copy.From][row] ?? throw new InvalidOperationException($"swap-in of host block {copy.From}: row {row} was never swapped out");
            }
        }
    }

    public List<StepPlan> Plans { get; } = [];

    /// <summary>The forks made, in order.</summary>
    public List<KvFork> Forks { get; } = [];

    public bool CopiesKv => true;

    public void CopyKv(KvFork fork)
    {
        Forks.Add(fork);
        foreach (var copy in fork.Copies)
        {
            for (var row = 0; row < copy.NumTokens; row++)
            {
                var entry = _blocks[copy.From][row] ?? throw new InvalidOperationException($"fork of {fork.ParentId}: block {copy.From} row {row} was never written");
                _blocks[copy.To][row] = entry with { SequenceId = fork.ChildId };
            }
        }
    }

    public bool SelectsGreedyInGraph => greedyOnDevice;

    /// <summary>The ids this fake's model generates for a request (its max_tokens, no EOS), computed without the engine.</summary>
    public static List<int> Expected(GenerationRequest request)
    {
        var history = request.PromptIds.ToList();
        var output = new List<int>();
        while (output.Count < request.MaxTokens)
        {
            var next = NextToken(history);
            output.Add(next);
            history.Add(next);
        }
        return output;
    }

    /// <summary>The token that follows <paramref name="history"/> (prompt ++ output so far).</summary>
    public static int NextToken(IReadOnlyList<int> history, int vocabSize = 97)
    {
        long hash = history.Count;
        foreach (var token in history)
        {
            hash = (hash * 31 + token) % 1_000_003;
        }
        return (int)(hash % vocabSize);
    }

    public StepOutputs Execute(StepPlan plan)
    {
        Plans.Add(plan);
        var scheduled = plan.DecodeRows.Select(r => (r.SequenceId, r.PastLength, Tokens: ImmutableArray.Create(r.TokenId), NeedsLogits: true, Table: KvBlockTable.BlocksOf(r.Place)))
            .Concat(plan.Prefills.Select(p => (p.SequenceId, p.PastLength, p.TokenIds, p.NeedsLogits, Table: KvBlockTable.BlocksOf(p.Place))))
            .ToList();
        foreach (var (id, past, tokens, _, table) in scheduled)
        {
            var written = Enumerable.Range(past, tokens.Length).Select(p => table[p / blockSize]).ToHashSet();
            foreach (var (other, _, _, _, otherTable) in scheduled)
            {
                var shared = other == id ? -1 : otherTable.FirstOrDefault(written.Contains, -1);
                if (shared >= 0)
                {
                    throw new InvalidOperationException($"sequence {id} writes block {shared}, which sequence {other} holds too");
                }
            }
        }
        var ids = ImmutableArray.CreateBuilder<long>();
        var picks = ImmutableArray.CreateBuilder<int>();
        var logits = new List<float>();
        foreach (var (id, past, tokens, needsLogits, table) in scheduled)
        {
            var total = past + tokens.Length;
            if (table.Length != (total + blockSize - 1) / blockSize)
            {
                throw new InvalidOperationException($"sequence {id}: {table.Length} blocks for {total} tokens of {blockSize}");
            }
            var history = new List<int>(past + tokens.Length);
            var hash = 0L;
            for (var p = 0; p < past; p++)
            {
                var token = Read(table, p, id, hash);
                history.Add(token);
                hash = Chain(hash, token);
            }
            for (var i = 0; i < tokens.Length; i++)
            {
                hash = Chain(hash, tokens[i]);
                _blocks[table[(past + i) / blockSize]][(past + i) % blockSize] = (id, tokens[i], hash);
                history.Add(tokens[i]);
            }
            if (needsLogits)
            {
                ids.Add(id);
                var next = NextToken(history, vocabSize);
                var picked = greedyOnDevice && plan.GraphPicks.ContainsKey(id);
                picks.Add(picked ? next : -1);
                var row = new float[vocabSize];
                row[picked ? (next + 1) % vocabSize : next] = 1f;
                logits.AddRange(row);
            }
        }
        return new StepOutputs(ids.ToImmutable(), [.. logits], vocabSize) { Tokens = greedyOnDevice ? picks.ToImmutable() : default };
    }

    /// <summary>The token at <paramref name="position"/>, whose entry must have been written after the tokens whose chained hash is <paramref name="history"/>.</summary>
    private int Read(ImmutableArray<int> table, int position, long sequenceId, long history)
    {
        var entry = _blocks[table[position / blockSize]][position % blockSize];
        if (entry is not { } written || written.History != Chain(history, written.Token))
        {
            throw new InvalidOperationException($"sequence {sequenceId}: position {position} of its blocks holds {entry?.ToString() ?? "nothing"}, not written after its tokens before it");
        }
        return written.Token;
    }

    private static long Chain(long history, int token) => unchecked((history ^ (token + 1)) * -7046029254386353131L);

    public void Dispose()
    {
    }
}

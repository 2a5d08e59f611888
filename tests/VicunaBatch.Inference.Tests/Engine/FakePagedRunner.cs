using System.Collections.Immutable;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// An <see cref="IStepRunner"/> over a paged KV cache that keeps its "keys" in real blocks: every fed token is written
/// at (block_table[p / blockSize], p % blockSize), and every step reads each request's whole history back through
/// its block table. The next token is a fixed function of that history (<see cref="NextToken"/>), so a request's
/// greedy ids depend only on its own tokens, as with a real model. Throws when a plan breaks the paged contract:
/// a past length that is not what the blocks hold, a table too short, a block shared by two requests of a step.
/// With <c>greedyOnDevice</c> it acts as a graph with an argmax output: the id of every row in
/// <see cref="StepPlan.GraphPicks"/> in <see cref="StepOutputs.Tokens"/>, and for those rows a logits row that points
/// at the wrong token, so an engine that sampled from it would go wrong.
/// </summary>
internal sealed class FakePagedRunner(int numBlocks, int blockSize, int maxBatchSize, int maxLength, int vocabSize = 97, bool greedyOnDevice = false) : IStepRunner
{
    private readonly (long SequenceId, int Token)?[][] _blocks =
        Enumerable.Range(0, numBlocks).Select(_ => new (long, int)?[blockSize]).ToArray();

    public int VocabSize => vocabSize;

    public int NumSlots => maxBatchSize;

    public int MaxLength => maxLength;

    public long KvCacheBytes => 0;

    /// <summary>Block tables over this runner's blocks, as <c>PagedVariant</c> opens them with a <c>PagedRunner</c>.</summary>
    public BlockTables NewBlockTables() => new(numBlocks, blockSize, maxLength);

    public List<StepPlan> Plans { get; } = [];

    public bool SelectsGreedyInGraph => greedyOnDevice;

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
        var owners = new Dictionary<int, long>();
        foreach (var (id, _, _, _, table) in scheduled)
        {
            foreach (var block in table)
            {
                if (!owners.TryAdd(block, id))
                {
                    throw new InvalidOperationException($"block {block} is in the tables of sequences {owners[block]} and {id}");
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
            var history = Enumerable.Range(0, past).Select(p => Read(table, p, id)).ToList();
            for (var i = 0; i < tokens.Length; i++)
            {
                _blocks[table[(past + i) / blockSize]][(past + i) % blockSize] = (id, tokens[i]);
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

    private int Read(ImmutableArray<int> table, int position, long sequenceId)
    {
        var entry = _blocks[table[position / blockSize]][position % blockSize];
        if (entry is not { } written || written.SequenceId != sequenceId)
        {
            throw new InvalidOperationException($"sequence {sequenceId}: position {position} of its blocks holds {entry?.ToString() ?? "nothing"}");
        }
        return written.Token;
    }

    public void Dispose()
    {
    }
}

using System.Collections.Immutable;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Onnx;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// The scheduler tests' stand-ins for the engine: a scheduler over KV slots or KV blocks, a sequence of a numbered
/// prompt, the engine's update of a step, and what the runners make of a plan.
/// </summary>
internal static class SchedulerSteps
{
    /// <summary>A scheduler over <paramref name="numSlots"/> KV slots, as the engine makes one for a GroupQueryAttention package.</summary>
    public static (Scheduler Scheduler, SlotTable Slots) OverSlots(int numSlots, int maxScheduledTokens, AdmissionOrder admission = AdmissionOrder.Arrival)
    {
        var slots = new SlotTable(numSlots, maxLength: 1024);
        return (new Scheduler(slots, maxBatchSize: numSlots, maxScheduledTokens, admission), slots);
    }

    /// <summary>
    /// A scheduler over a pool of KV blocks, as the engine makes one for a paged package; by default admitting on demand
    /// (the packing and preemption tests) without the prefix cache; <see cref="KvAdmission.Reserve"/> and the prefix
    /// cache, as the engine's defaults, when asked.
    /// </summary>
    public static (Scheduler Scheduler, BlockTables Blocks) OverBlocks(int numBlocks, int blockSize, int maxBatchSize, int maxLength, int maxScheduledTokens,
        KvAdmission kvAdmission = KvAdmission.OnDemand, bool prefixCache = false)
    {
        var blocks = new BlockTables(numBlocks, blockSize, maxLength, prefixCache);
        return (new Scheduler(blocks, maxBatchSize, maxScheduledTokens, AdmissionOrder.Arrival, kvAdmission), blocks);
    }

    /// <summary>Sequence <paramref name="id"/> with prompt <paramref name="prompt"/>.</summary>
    public static Sequence SequenceOf(long id, int[] prompt, int maxTokens = 100) =>
        new(id, new GenerationRequest($"r{id}", prompt, maxTokens), 0);

    /// <summary>Sequence <paramref name="id"/> with prompt tokens id*100, id*100+1, ...</summary>
    public static Sequence NewSequence(long id, int promptLength, int maxTokens = 100)
    {
        var prompt = Enumerable.Range(0, promptLength).Select(i => (int)id * 100 + i).ToArray();
        return new Sequence(id, new GenerationRequest($"r{id}", prompt, maxTokens), 0);
    }

    /// <summary>
    /// What <c>InferenceEngine.Update</c> does to each scheduled sequence, sampling <paramref name="token"/>; with
    /// <paramref name="kvCache"/>, it also caches their computed blocks, as the engine does.
    /// </summary>
    public static void Apply(StepPlan plan, IReadOnlyList<Sequence> sequences, int token, IKvCacheManager? kvCache = null)
    {
        var byId = sequences.ToDictionary(s => s.SequenceId);
        foreach (var row in plan.DecodeRows)
        {
            byId[row.SequenceId].NumComputed++;
            kvCache?.CacheComputed(byId[row.SequenceId]);
            byId[row.SequenceId].Append(token);
        }
        foreach (var chunk in plan.Prefills)
        {
            var sequence = byId[chunk.SequenceId];
            Assert.Equal(sequence.NumComputed, chunk.PastLength);
            sequence.NumComputed += chunk.TokenIds.Length;
            kvCache?.CacheComputed(sequence);
            if (chunk.NeedsLogits)
            {
                sequence.Append(token);
            }
        }
    }

    /// <summary>The slot <paramref name="sequence"/> holds, or -1.</summary>
    public static int SlotOf(SlotTable slots, Sequence sequence) => slots.TryGetSlot(sequence.SequenceId, out var slot) ? slot : -1;

    /// <summary>The rows of the plan's decode call over KV slots, fillers included (<see cref="SlotRows"/>, as <see cref="GqaRunner"/> runs it).</summary>
    public static SlotRow[] SlotRowsOf(StepPlan plan)
    {
        var rows = new SlotRow[64];
        return rows[..SlotRows.Fill(plan, rows)];
    }

    /// <summary>The plan's decodes as (sequence, token, past length).</summary>
    public static (long SequenceId, int TokenId, int PastLength)[] Decodes(StepPlan plan) =>
        [.. plan.DecodeRows.Select(r => (r.SequenceId, r.TokenId, r.PastLength))];

    /// <summary>The block table of every sequence the plan schedules.</summary>
    public static Dictionary<long, ImmutableArray<int>> BlockTablesOf(StepPlan plan) =>
        plan.DecodeRows.Select(r => (r.SequenceId, r.Place)).Concat(plan.Prefills.Select(p => (p.SequenceId, p.Place)))
            .ToDictionary(r => r.SequenceId, r => KvBlockTable.BlocksOf(r.Place));
}

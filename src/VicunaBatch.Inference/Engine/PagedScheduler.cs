using System.Collections.Immutable;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// Iteration-level scheduling over KV blocks (PagedAttention, one <c>Run</c> per step). Each step, within a budget of
/// <c>maxScheduledTokens</c>: every running request past its prompt decodes one token (decode-first, oldest first),
/// then prompts still being prefilled continue, oldest first, then — when nobody was preempted this step — waiting
/// requests are admitted while the batch has room (at most <c>maxBatchSize</c> running) and the pool has blocks for
/// their first chunk. Prompts longer than the budget left are split into chunks.
/// When a running request needs a block and the pool is empty, the youngest running request (last admitted) is
/// preempted by recompute: it gives its blocks back and goes to the front of the queue, to prefill prompt ++ output
/// again; its output so far is kept. A request that is itself the youngest preempts itself. The oldest running
/// request can always grow (the pool holds one full-length request), so every request ends.
/// </summary>
internal sealed class PagedScheduler : IScheduler
{
    private readonly WaitingQueue _waiting;
    private readonly List<Sequence> _running = []; // admission order: oldest first
    private readonly BlockTables _blocks;
    private readonly int _maxBatchSize;
    private readonly int _maxScheduledTokens;

    public PagedScheduler(int numBlocks, int blockSize, int maxBatchSize, int maxLength, int maxScheduledTokens,
        AdmissionOrder admission = AdmissionOrder.Arrival)
    {
        if (maxBatchSize < 1 || maxBatchSize > maxScheduledTokens)
        {
            throw new ArgumentOutOfRangeException(nameof(maxBatchSize), maxBatchSize,
                $"must be 1 to maxScheduledTokens ({maxScheduledTokens}) so every running request decodes each step");
        }
        _blocks = new BlockTables(numBlocks, blockSize, maxLength);
        _waiting = new WaitingQueue(admission, maxBatchSize);
        _maxBatchSize = maxBatchSize;
        _maxScheduledTokens = maxScheduledTokens;
    }

    public int NumWaiting => _waiting.Count;

    public int NumRunning => _running.Count;

    public bool HasWork => _waiting.Count > 0 || _running.Count > 0;

    public long NumPreemptions { get; private set; }

    public int NumFreeBlocks => _blocks.NumFreeBlocks;

    /// <summary>In admission order (oldest first).</summary>
    public IEnumerable<Sequence> Running => _running;

    /// <summary>Preempted first, then in arrival order.</summary>
    public IEnumerable<Sequence> Waiting => _waiting.InArrivalOrder;

    /// <summary>The block table of a running request (empty when it holds none).</summary>
    public ImmutableArray<int> BlocksOf(Sequence sequence) => _blocks.BlocksOf(sequence.SequenceId);

    public void Add(Sequence sequence) => _waiting.Add(sequence);

    public StepPlan Schedule()
    {
        var step = new List<(Sequence Sequence, int NumTokens)>();
        var budget = _maxScheduledTokens;
        var preempted = false;
        foreach (var sequence in _running.Where(s => !s.IsPrefilling).ToList())
        {
            // running ≤ maxBatchSize ≤ budget: every decode fits
            if (sequence.Status == SequenceStatus.Running && Reserve(sequence, 1, step, ref budget, ref preempted))
            {
                step.Add((sequence, 1));
                budget--;
            }
        }
        foreach (var sequence in _running.Where(s => s.IsPrefilling).ToList())
        {
            if (budget == 0)
            {
                break;
            }
            var length = Math.Min(sequence.NumPrefillTokensLeft, budget);
            if (sequence.Status == SequenceStatus.Running && Reserve(sequence, length, step, ref budget, ref preempted))
            {
                step.Add((sequence, length));
                budget -= length;
            }
        }
        while (!preempted && budget > 0 && _running.Count < _maxBatchSize && _waiting.Peek() is { } waiting)
        {
            var length = Math.Min(waiting.NumPrefillTokensLeft, budget);
            if (!_blocks.TryReserve(waiting.SequenceId, length))
            {
                break; // admissions never preempt: wait for blocks to come back
            }
            _waiting.Admit(waiting);
            waiting.Status = SequenceStatus.Running;
            waiting.NumComputed = 0;
            _running.Add(waiting);
            step.Add((waiting, length));
            budget -= length;
        }
        return BuildPlan(step);
    }

    public void Finish(Sequence sequence)
    {
        if (sequence.Status == SequenceStatus.Running)
        {
            _running.Remove(sequence);
            _blocks.Free(sequence.SequenceId);
        }
        else if (sequence.Status == SequenceStatus.Waiting)
        {
            _waiting.Remove(sequence);
        }
        sequence.Status = SequenceStatus.Finished;
    }

    /// <summary>
    /// Grows <paramref name="sequence"/>'s table to its computed tokens + <paramref name="numTokens"/>, preempting the
    /// youngest other running request while the pool is short (dropping it from this step if it was scheduled).
    /// False when <paramref name="sequence"/> is the youngest and had to preempt itself.
    /// </summary>
    private bool Reserve(Sequence sequence, int numTokens, List<(Sequence Sequence, int NumTokens)> step, ref int budget, ref bool preempted)
    {
        while (!_blocks.TryReserve(sequence.SequenceId, sequence.NumComputed + numTokens))
        {
            preempted = true;
            var victim = _running[^1];
            var at = step.FindIndex(s => s.Sequence == victim);
            if (at >= 0)
            {
                budget += step[at].NumTokens;
                step.RemoveAt(at);
            }
            Preempt(victim);
            if (victim == sequence)
            {
                return false;
            }
        }
        return true;
    }

    private void Preempt(Sequence sequence)
    {
        _running.Remove(sequence);
        _blocks.Free(sequence.SequenceId);
        sequence.Preempt();
        _waiting.Requeue(sequence);
        NumPreemptions++;
    }

    private StepPlan BuildPlan(List<(Sequence Sequence, int NumTokens)> step)
    {
        var decodes = ImmutableArray.CreateBuilder<DecodeRow>();
        var prefills = ImmutableArray.CreateBuilder<PrefillChunk>();
        var tables = ImmutableDictionary.CreateBuilder<long, ImmutableArray<int>>();
        foreach (var (sequence, numTokens) in step)
        {
            var start = sequence.NumComputed;
            if (sequence.IsPrefilling)
            {
                var isLast = start + numTokens == sequence.NumPrefillTokens;
                prefills.Add(new PrefillChunk(sequence.SequenceId, -1, start, sequence.Tokens(start, numTokens), isLast));
            }
            else
            {
                decodes.Add(new DecodeRow(sequence.SequenceId, sequence.LastTokenId, start));
            }
            tables.Add(sequence.SequenceId, _blocks.BlocksOf(sequence.SequenceId));
        }
        return new StepPlan(decodes.ToImmutable(), prefills.ToImmutable()) { BlockTables = tables.ToImmutable() };
    }
}

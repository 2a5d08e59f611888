using System.Collections.Immutable;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// Iteration-level scheduling over KV slots. Each step: every running request that is past its prompt
/// decodes one token (decode-first), then prompts still being prefilled continue in admission order, then
/// waiting requests are admitted in the <see cref="WaitingQueue"/>'s order (arrival, or longest first with a bounded
/// wait) while a slot is free and the step's token budget lasts. Prompts longer than what is left of the budget are
/// split into chunks. Every request is admitted after a bounded number of others and a slot is held until its
/// request ends, so nothing starves: a prefilling request never decodes, so decodes
/// use at most <c>MaxBatchSize - 1</c> tokens of a budget of at least <c>MaxBatchSize</c> and every
/// prefilling request gets at least one token per step in turn.
/// </summary>
internal sealed class Scheduler : IScheduler
{
    private readonly WaitingQueue _waiting;
    private readonly List<Sequence> _running = [];
    private readonly Sequence?[] _slotToSequence;
    private readonly SlotPool _slots;
    private readonly int _maxScheduledTokens;

    public Scheduler(int numSlots, int maxScheduledTokens, AdmissionOrder admission = AdmissionOrder.Arrival)
    {
        _waiting = new WaitingQueue(admission, numSlots);
        _slots = new SlotPool(numSlots);
        _slotToSequence = new Sequence?[numSlots];
        _maxScheduledTokens = maxScheduledTokens;
    }

    public int NumWaiting => _waiting.Count;

    public int NumRunning => _running.Count;

    public int NumFreeSlots => _slots.NumFree;

    public bool HasWork => _waiting.Count > 0 || _running.Count > 0;

    /// <summary>A slot is held until its request ends: never.</summary>
    public long NumPreemptions => 0;

    public IEnumerable<Sequence> Running => _running;

    /// <summary>In arrival order.</summary>
    public IEnumerable<Sequence> Waiting => _waiting.InArrivalOrder;

    public void Add(Sequence sequence) => _waiting.Add(sequence);

    public StepPlan Schedule()
    {
        var budget = _maxScheduledTokens;
        var prefills = ImmutableArray.CreateBuilder<PrefillChunk>();
        var numDecodes = _running.Count(s => !s.IsPrefilling);
        budget -= numDecodes;

        foreach (var sequence in _running)
        {
            if (budget == 0)
            {
                break;
            }
            if (sequence.IsPrefilling)
            {
                budget -= AddChunk(sequence, budget, prefills);
            }
        }

        while (budget > 0 && _waiting.Peek() is { } sequence && _slots.TryAllocate(out var slot))
        {
            _waiting.Admit(sequence);
            Admit(sequence, slot);
            budget -= AddChunk(sequence, budget, prefills);
        }

        return new StepPlan(numDecodes == 0 ? [] : BuildDecodeRows(), prefills.ToImmutable());
    }

    /// <summary>Ends a running or waiting request and frees its slot.</summary>
    public void Finish(Sequence sequence)
    {
        if (sequence.Status == SequenceStatus.Running)
        {
            _running.Remove(sequence);
            _slotToSequence[sequence.Slot] = null;
            _slots.Free(sequence.Slot);
            sequence.Slot = -1;
        }
        else if (sequence.Status == SequenceStatus.Waiting)
        {
            _waiting.Remove(sequence);
        }
        sequence.Status = SequenceStatus.Finished;
    }

    private void Admit(Sequence sequence, int slot)
    {
        if (_slotToSequence[slot] is { } holder)
        {
            throw new InvalidOperationException($"slot {slot} handed out while sequence {holder.SequenceId} holds it");
        }
        sequence.Slot = slot;
        sequence.Status = SequenceStatus.Running;
        sequence.NumComputed = 0;
        _slotToSequence[slot] = sequence;
        _running.Add(sequence);
    }

    private static int AddChunk(Sequence sequence, int budget, ImmutableArray<PrefillChunk>.Builder prefills)
    {
        var length = Math.Min(sequence.NumPrefillTokensLeft, budget);
        var start = sequence.NumComputed;
        var tokens = sequence.Tokens(start, length);
        var isLast = start + length == sequence.NumPrefillTokens;
        prefills.Add(new PrefillChunk(sequence.SequenceId, sequence.Slot, start, tokens, isLast));
        return length;
    }

    private ImmutableArray<DecodeRow> BuildDecodeRows()
    {
        var numRows = _slots.UsedPrefixLength;
        var rows = ImmutableArray.CreateBuilder<DecodeRow>(numRows);
        for (var slot = 0; slot < numRows; slot++)
        {
            var sequence = _slotToSequence[slot];
            rows.Add(sequence switch
            {
                null => new DecodeRow(DecodeRow.Filler, 0, 0),
                { IsPrefilling: true } => new DecodeRow(DecodeRow.Filler, 0, sequence.NumComputed),
                _ => new DecodeRow(sequence.SequenceId, sequence.LastTokenId, sequence.NumComputed),
            });
        }
        return rows.MoveToImmutable();
    }
}

using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// The KV cache manager of the GroupQueryAttention graph: each running request's KV slot, over one <see cref="SlotPool"/>.
/// A request takes the lowest free slot at its first reservation and keeps it, with room for <see cref="MaxLength"/>
/// tokens, until it ends: a request that holds a slot can always grow, so it is never preempted.
/// </summary>
internal sealed class SlotTable : IKvCacheManager
{
    private readonly SlotPool _pool;
    private readonly KvSlot[] _places;        // [numSlots]: slot s's place, made once
    private readonly long?[] _slotToSequence; // [numSlots]: the request holding slot s
    private readonly Dictionary<long, int> _sequenceToSlot = [];

    public SlotTable(int numSlots, int maxLength)
    {
        if (numSlots < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(numSlots), numSlots, "a slot table needs at least one slot");
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 1);
        _pool = new SlotPool(numSlots);
        _places = [.. Enumerable.Range(0, numSlots).Select(slot => new KvSlot(slot))];
        _slotToSequence = new long?[numSlots];
        MaxLength = maxLength;
    }

    public int NumSlots => _pool.NumSlots;

    public int NumFreeSlots => _pool.NumFree;

    /// <summary>Tokens one slot holds.</summary>
    public int MaxLength { get; }

    public KvCacheUsage Usage => new(KvUnit.Slot, _pool.NumSlots, MaxLength, _pool.NumUsed);

    public int NumFreeUnits => _pool.NumFree;

    /// <summary>One slot until it holds one: a slot holds the maximum length from the start.</summary>
    public int UnitsToGrow(long sequenceId, int numTokens) => _sequenceToSlot.ContainsKey(sequenceId) ? 0 : 1;

    /// <summary>True (and the lowest free slot taken at the first call) unless no slot is free.</summary>
    public bool TryReserve(long sequenceId, int numTokens)
    {
        if (numTokens < 0 || numTokens > MaxLength)
        {
            throw new InvalidOperationException($"sequence {sequenceId}: {numTokens} tokens do not fit a slot of {MaxLength}");
        }
        if (_sequenceToSlot.ContainsKey(sequenceId))
        {
            return true;
        }
        if (!_pool.TryAllocate(out var slot))
        {
            return false;
        }
        if (_slotToSequence[slot] is { } holder)
        {
            throw new InvalidOperationException($"slot {slot} handed out while sequence {holder} holds it");
        }
        _slotToSequence[slot] = sequenceId;
        _sequenceToSlot.Add(sequenceId, slot);
        return true;
    }

    /// <summary>A free slot for the child, into which the runner copies the parent's tokens.</summary>
    public bool TryFork(long parentId, long childId, int numTokens, [NotNullWhen(true)] out KvFork? fork)
    {
        var parentSlot = _sequenceToSlot.TryGetValue(parentId, out var held)
            ? held
            : throw new InvalidOperationException($"sequence {parentId} holds no KV slot to fork");
        if (_sequenceToSlot.ContainsKey(childId))
        {
            throw new InvalidOperationException($"sequence {childId} already holds a KV slot; a fork makes a new one");
        }
        if (!TryReserve(childId, numTokens))
        {
            fork = null;
            return false;
        }
        fork = new KvFork(parentId, childId, numTokens, [new KvUnitCopy(parentSlot, _sequenceToSlot[childId], numTokens)]);
        return true;
    }

    /// <summary>0: slots cache no prefix (each holds its own request's KV from position 0).</summary>
    public int TakeCachedPrefix(Sequence sequence) => 0;

    public void CacheComputed(Sequence sequence)
    {
    }

    public long NumEvictedBlocks => 0;

    /// <summary>False: a slot holds the maximum length from the start, so nobody is preempted over slots.</summary>
    public bool TrySwapOut(long sequenceId, int numTokens, out ImmutableArray<KvUnitCopy> copies)
    {
        copies = [];
        return false;
    }

    public bool TrySwapIn(long sequenceId, int numTokens, out ImmutableArray<KvUnitCopy> copies) =>
        throw new InvalidOperationException($"sequence {sequenceId}: KV slots swap nothing out, so nothing comes back in");

    public KvPlace PlaceOf(long sequenceId) =>
        _sequenceToSlot.TryGetValue(sequenceId, out var slot)
            ? _places[slot]
            : throw new InvalidOperationException($"sequence {sequenceId} holds no KV slot ({_pool.NumUsed} of {NumSlots} held)");

    /// <summary>The slot <paramref name="sequenceId"/> holds, if it holds one.</summary>
    public bool TryGetSlot(long sequenceId, out int slot) => _sequenceToSlot.TryGetValue(sequenceId, out slot);

    public void Free(long sequenceId)
    {
        if (!_sequenceToSlot.Remove(sequenceId, out var slot))
        {
            return;
        }
        _slotToSequence[slot] = null;
        _pool.Free(slot);
    }
}

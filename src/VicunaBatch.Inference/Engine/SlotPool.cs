namespace VicunaBatch.Inference.Engine;

/// <summary>
/// The free list of KV slots. Always hands out the lowest free slot so running requests stay packed at
/// the front and one batched decode binds a short prefix of the KV buffers (<see cref="Onnx.SlotRows"/>).
/// </summary>
internal sealed class SlotPool
{
    private readonly SortedSet<int> _free;

    public SlotPool(int numSlots)
    {
        NumSlots = numSlots;
        _free = new SortedSet<int>(Enumerable.Range(0, numSlots));
    }

    public int NumSlots { get; }

    public int NumFree => _free.Count;

    public int NumUsed => NumSlots - _free.Count;

    public bool TryAllocate(out int slot)
    {
        if (_free.Count == 0)
        {
            slot = -1;
            return false;
        }
        slot = _free.Min;
        _free.Remove(slot);
        return true;
    }

    public void Free(int slot)
    {
        if (slot < 0 || slot >= NumSlots || !_free.Add(slot))
        {
            throw new InvalidOperationException($"slot {slot} is not allocated (slots: {NumSlots}, free: {_free.Count})");
        }
    }
}

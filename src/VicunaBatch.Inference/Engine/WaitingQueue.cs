namespace VicunaBatch.Inference.Engine;

/// <summary>Which waiting request is admitted next.</summary>
public enum AdmissionOrder
{
    /// <summary>Arrival order (FIFO).</summary>
    Arrival,

    /// <summary>
    /// The longest request first (prompt + max_tokens, ties in arrival order): a batch ends when its longest request
    /// does, so starting those first keeps the batch full to the end instead of finishing on a few long stragglers
    /// (longest-processing-time-first). Bounded wait: a request passed over by <see cref="WaitingQueue.MaxPassOvers"/>
    /// × batch size admissions of later arrivals goes next.
    /// </summary>
    LongestFirst,
}

/// <summary>
/// The scheduler's waiting requests, handed out in an <see cref="AdmissionOrder"/>. Preempted requests
/// (<see cref="Requeue"/>) go before every other, oldest first: they already made output and hold its latency.
/// </summary>
/// <param name="maxBatchSize">Requests running at once at most: the unit of <see cref="MaxPassOvers"/>.</param>
internal sealed class WaitingQueue(AdmissionOrder order, int maxBatchSize)
{
    /// <summary>How many batches' worth of later arrivals may overtake a request under <see cref="AdmissionOrder.LongestFirst"/>.</summary>
    public const int MaxPassOvers = 16;

    private readonly LinkedList<(Sequence Sequence, long AdmissionsAtArrival)> _byArrival = new();
    private readonly Dictionary<long, LinkedListNode<(Sequence, long)>> _nodes = [];
    private readonly SortedSet<Sequence> _byLength = new(Comparer<Sequence>.Create(LongestFirst));
    private readonly SortedSet<Sequence> _preempted = new(Comparer<Sequence>.Create((a, b) => a.SequenceId.CompareTo(b.SequenceId)));
    private long _numAdmitted;

    public int Count => _byArrival.Count + _preempted.Count;

    /// <summary>Preempted requests first (oldest first), then the rest in arrival order.</summary>
    public IEnumerable<Sequence> InArrivalOrder => _preempted.Concat(_byArrival.Select(entry => entry.Sequence));

    /// <summary>A preempted request: it goes next, before requests that never ran.</summary>
    public void Requeue(Sequence sequence)
    {
        if (_nodes.ContainsKey(sequence.SequenceId) || !_preempted.Add(sequence))
        {
            throw new InvalidOperationException($"sequence {sequence.SequenceId} is already waiting");
        }
    }

    public void Add(Sequence sequence)
    {
        _nodes[sequence.SequenceId] = _byArrival.AddLast((sequence, _numAdmitted));
        if (order == AdmissionOrder.LongestFirst) _byLength.Add(sequence);
    }

    /// <summary>The request admitted next, or null when none waits.</summary>
    public Sequence? Peek()
    {
        if (_preempted.Count > 0) return _preempted.Min;
        if (_byArrival.First is not { } oldest) return null;
        if (order == AdmissionOrder.Arrival) return oldest.Value.Sequence;
        var (sequence, admissionsAtArrival) = oldest.Value;
        return _numAdmitted - admissionsAtArrival >= (long)MaxPassOvers * maxBatchSize ? sequence : _byLength.Min;
    }

    /// <summary>Takes <paramref name="sequence"/> (from <see cref="Peek"/>) out to run.</summary>
    public void Admit(Sequence sequence)
    {
        if (!Remove(sequence)) throw new InvalidOperationException($"sequence {sequence.SequenceId} is not waiting");
        _numAdmitted++;
    }

    public bool Remove(Sequence sequence)
    {
        if (_preempted.Remove(sequence)) return true;
        if (!_nodes.Remove(sequence.SequenceId, out var node)) return false;
        _byArrival.Remove(node);
        _byLength.Remove(sequence);
        return true;
    }

    private static int LongestFirst(Sequence a, Sequence b)
    {
        var byLength = Length(b).CompareTo(Length(a));
        return byLength != 0 ? byLength : a.SequenceId.CompareTo(b.SequenceId);
    }

    private static long Length(Sequence sequence) => (long)sequence.PromptIds.Length + sequence.Request.MaxTokens;
}

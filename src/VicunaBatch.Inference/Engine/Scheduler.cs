using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// Iteration-level scheduling over a KV cache manager (<see cref="IKvCacheManager"/>: KV slots or KV blocks). Each
/// step, within a budget of <c>maxScheduledTokens</c>: every running request past its prompt decodes one token
/// (decode-first, oldest first), then prompts still being prefilled continue, oldest first, then — when nobody was
/// preempted this step — waiting requests are admitted in the <see cref="WaitingQueue"/>'s order while the batch has
/// room (at most <c>maxBatchSize</c> running, counting the choices a request of n will fork, <see cref="Places"/>) and
/// the KV cache manager takes their first chunk. Prompts longer than the
/// budget left are split into chunks. An admitted request starts with the tokens whose KV the manager's prefix cache
/// gives it (<see cref="IKvCacheManager.TakeCachedPrefix"/>) computed, and prefills the rest.
/// Under <see cref="KvAdmission.Reserve"/> (the default) a waiting request is admitted only when the free KV, less what
/// every running request still needs to reach its end (prompt + max_tokens, at most the maximum length), holds its own
/// end too: the KV a request will need is counted at admission, so running requests always grow and nobody is preempted.
/// Under <see cref="KvAdmission.OnDemand"/> only its first chunk must fit, and running requests may later run short.
/// When a running request's KV cannot grow, the youngest running request (last admitted) is preempted: swapped out to
/// host memory when the manager's host blocks hold its computed tokens and swapping pays (<c>swapPays</c>:
/// <see cref="EngineStatistics.SwapPays"/>) (<see cref="IKvCacheManager.TrySwapOut"/>; it
/// resumes later where it stopped, its KV copied back, nothing recomputed), else by recompute: it gives its KV back and
/// goes to the front of the queue, to prefill prompt ++ output again; its output so far is kept either way. A request
/// that is itself the youngest preempts itself. The runner makes a step's swap copies before the step runs. A KV slot holds the maximum length from the start,
/// so over slots nobody is ever preempted.
/// Nothing starves: the KV cache holds one request of the maximum length, so the oldest running request can always
/// grow; running ≤ <c>maxBatchSize</c> ≤ budget, so every decode fits, and a prefilling request never decodes, so
/// decodes leave at least one token a step for the prompts, which get them oldest first; waiting requests are
/// admitted after a bounded number of others (<see cref="WaitingQueue"/>).
/// </summary>
internal sealed class Scheduler
{
    private readonly IKvCacheManager _kvCache;
    private readonly WaitingQueue _waiting;
    private readonly List<Sequence> _running = []; // admission order: oldest first
    private readonly List<Sequence> _runningAtStart = []; // _running when this step began
    private readonly List<(Sequence Sequence, int NumTokens)> _step = [];
    private readonly List<Sequence> _idle = [];
    private readonly List<KvUnitCopy> _swapOuts = [];
    private readonly List<KvUnitCopy> _swapIns = [];
    private readonly int _maxBatchSize;
    private readonly int _maxScheduledTokens;
    private readonly KvAdmission _kvAdmission;
    private readonly Func<bool> _swapPays;
    private int _numCachedTokens; // this step's admissions' tokens from the prefix cache

    /// <param name="swapPays">Asked at each preemption: whether swapping to host memory costs less than recomputing now
    /// (<see cref="EngineStatistics.SwapPays"/>); false: recompute. Default: always swap where the host blocks hold it.</param>
    public Scheduler(IKvCacheManager kvCache, int maxBatchSize, int maxScheduledTokens, AdmissionOrder admission = AdmissionOrder.Arrival,
        KvAdmission kvAdmission = KvAdmission.Reserve, Func<bool>? swapPays = null)
    {
        _swapPays = swapPays ?? (() => true);
        if (maxBatchSize < 1 || maxBatchSize > maxScheduledTokens)
        {
            throw new ArgumentOutOfRangeException(nameof(maxBatchSize), maxBatchSize,
                $"must be 1 to maxScheduledTokens ({maxScheduledTokens}) so every running request decodes each step");
        }
        _kvCache = kvCache;
        _waiting = new WaitingQueue(admission, maxBatchSize);
        _maxBatchSize = maxBatchSize;
        _maxScheduledTokens = maxScheduledTokens;
        _kvAdmission = kvAdmission;
    }

    public int NumWaiting => _waiting.Count;

    public int NumRunning => _running.Count;

    public bool HasWork => _waiting.Count > 0 || _running.Count > 0;

    /// <summary>Requests sent back to the queue to be recomputed because their KV could not grow.</summary>
    public long NumPreemptions { get; private set; }

    /// <summary>Requests preempted to host memory because their KV could not grow (resumed, not recomputed).</summary>
    public long NumSwapOuts { get; private set; }

    /// <summary>In admission order (oldest first).</summary>
    public IEnumerable<Sequence> Running => _running;

    /// <summary>Preempted first, then in arrival order.</summary>
    public IEnumerable<Sequence> Waiting => _waiting.InArrivalOrder;

    public void Add(Sequence sequence) => _waiting.Add(sequence);

    public StepPlan Schedule()
    {
        _step.Clear();
        _idle.Clear();
        _swapOuts.Clear();
        _swapIns.Clear();
        _numCachedTokens = 0;
        _runningAtStart.Clear();
        _runningAtStart.AddRange(_running);
        var budget = _maxScheduledTokens;
        var preempted = false;
        foreach (var sequence in _runningAtStart)
        {
            // running ≤ maxBatchSize ≤ budget: every decode fits
            if (!sequence.IsPrefilling && sequence.Status == SequenceStatus.Running && Reserve(sequence, 1, ref budget, ref preempted))
            {
                _step.Add((sequence, 1));
                budget--;
            }
        }
        foreach (var sequence in _runningAtStart)
        {
            if (!sequence.IsPrefilling || sequence.Status != SequenceStatus.Running)
            {
                continue;
            }
            if (budget == 0)
            {
                _idle.Add(sequence);
                continue;
            }
            var length = Math.Min(sequence.NumPrefillTokensLeft, budget);
            if (Reserve(sequence, length, ref budget, ref preempted))
            {
                _step.Add((sequence, length));
                budget -= length;
            }
        }
        Admit(ref budget, preempted);
        return BuildPlan();
    }

    /// <summary>
    /// Runs <paramref name="child"/>, a new choice of the running <paramref name="parent"/> (<see cref="GenerationRequest.NumChoices"/>),
    /// on a fork of the parent's KV: its computed tokens are the child's too, once the runner has made the fork's copies.
    /// It joins the batch as its youngest. False, and nothing changed, when the batch is full or the KV short: queue it instead.
    /// </summary>
    public bool TryFork(Sequence parent, Sequence child, [NotNullWhen(true)] out KvFork? fork)
    {
        fork = null;
        if (parent.Status != SequenceStatus.Running || _running.Count >= _maxBatchSize
            || !_kvCache.TryFork(parent.SequenceId, child.SequenceId, parent.NumComputed, out fork))
        {
            return false;
        }
        child.Status = SequenceStatus.Running;
        child.NumComputed = parent.NumComputed;
        _running.Add(child);
        return true;
    }

    /// <summary>Ends a running or waiting request and gives its KV back (a swapped-out one's host blocks too).</summary>
    public void Finish(Sequence sequence)
    {
        if (sequence.Status == SequenceStatus.Running)
        {
            _running.Remove(sequence);
            _kvCache.Free(sequence.SequenceId);
        }
        else if (sequence.Status == SequenceStatus.Waiting)
        {
            _waiting.Remove(sequence);
            _kvCache.Free(sequence.SequenceId); // host blocks of a swapped-out request
        }
        sequence.Status = SequenceStatus.Finished;
    }

    /// <summary>
    /// Waiting requests, in queue order, while the step has budget, the batch has room and their first chunk's KV fits
    /// (under <see cref="KvAdmission.Reserve"/>: their KV to the end, beside what the running requests will still take).
    /// </summary>
    private void Admit(ref int budget, bool preempted)
    {
        var placesTaken = _running.Sum(Places);
        while (!preempted && budget > 0 && _waiting.Peek() is { } waiting && placesTaken + Places(waiting) <= _maxBatchSize)
        {
            // a swapped-out request resumes where it stopped, its KV copied back: its next prompt chunk or its next
            // decode; any other starts with the prefix cache's KV of its first tokens, shared, and prefills the rest
            var resumes = waiting.IsSwappedOut;
            var numComputed = resumes ? waiting.NumComputed : _kvCache.TakeCachedPrefix(waiting);
            var length = resumes && !waiting.IsPrefilling ? 1 : Math.Min(waiting.NumPrefillTokens - numComputed, budget);
            var swapIns = ImmutableArray<KvUnitCopy>.Empty;
            // a request whose choices need more than the whole pool to their ends waits for an empty pool, then runs;
            // choices that then find no KV compute their prompt themselves later (the youngest preempted if KV runs out)
            if ((_kvAdmission == KvAdmission.Reserve && Math.Min(Places(waiting) * UnitsToEnd(waiting), _kvCache.Usage.NumUnits) > Headroom())
                || !(resumes
                    ? _kvCache.TrySwapIn(waiting.SequenceId, numComputed + length, out swapIns)
                    : _kvCache.TryReserve(waiting.SequenceId, numComputed + length)))
            {
                if (!resumes) _kvCache.Free(waiting.SequenceId); // the cached blocks go back to the cache
                break; // admissions never preempt: wait for KV to come back
            }
            _waiting.Admit(waiting);
            if (resumes)
            {
                _swapIns.AddRange(swapIns);
                waiting.SwapIn();
            }
            else
            {
                _numCachedTokens += numComputed;
                waiting.Status = SequenceStatus.Running;
                waiting.NumComputed = numComputed;
            }
            _running.Add(waiting);
            _step.Add((waiting, length));
            budget -= length;
            placesTaken += Places(waiting);
        }
    }

    /// <summary>
    /// KV units free once every running request has grown to its end (<see cref="UnitsToEnd"/>): what a request admitted
    /// under <see cref="KvAdmission.Reserve"/> may take. Asked afresh for each admission: blocks taken from the prefix
    /// cache were counted free while no request held them.
    /// </summary>
    private int Headroom() => _kvCache.NumFreeUnits - _running.Sum(s => Places(s) * UnitsToEnd(s));

    /// <summary>
    /// KV units <paramref name="sequence"/> must still take to hold its last token: its prompt + max_tokens (the manager
    /// caps it at the maximum length). A choice still to fork is counted as a whole request of its own by <see cref="Places"/>
    /// (it will share the prompt's whole blocks: an overcount, never an undercount).
    /// </summary>
    private int UnitsToEnd(Sequence sequence) =>
        _kvCache.UnitsToGrow(sequence.SequenceId, (int)Math.Min((long)sequence.PromptIds.Length + sequence.Request.MaxTokens, int.MaxValue));

    /// <summary>
    /// The batch places <paramref name="sequence"/> takes: its own, and one for each choice it will fork once its prompt
    /// is computed (as many as the batch holds), kept free from admission on so the choices share its prefill.
    /// </summary>
    private int Places(Sequence sequence) => Math.Min(1 + sequence.ChoicesToFork, _maxBatchSize);

    /// <summary>
    /// Grows <paramref name="sequence"/>'s KV to its computed tokens + <paramref name="numTokens"/>, preempting the
    /// youngest other running request while the KV cache is short (dropping it from this step if it was scheduled).
    /// False when <paramref name="sequence"/> is the youngest and had to preempt itself.
    /// </summary>
    private bool Reserve(Sequence sequence, int numTokens, ref int budget, ref bool preempted)
    {
        while (!_kvCache.TryReserve(sequence.SequenceId, sequence.NumComputed + numTokens))
        {
            preempted = true;
            var victim = _running[^1];
            for (var i = 0; i < _step.Count; i++)
            {
                if (_step[i].Sequence == victim)
                {
                    budget += _step[i].NumTokens;
                    _step.RemoveAt(i);
                    break;
                }
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
        if (_swapPays() && _kvCache.TrySwapOut(sequence.SequenceId, sequence.NumComputed, out var copies))
        {
            _swapOuts.AddRange(copies);
            sequence.SwapOut();
            NumSwapOuts++;
        }
        else
        {
            _kvCache.Free(sequence.SequenceId);
            sequence.Preempt();
            NumPreemptions++;
        }
        _waiting.Requeue(sequence);
    }

    private StepPlan BuildPlan()
    {
        var decodes = ImmutableArray.CreateBuilder<DecodeRow>();
        var prefills = ImmutableArray.CreateBuilder<PrefillChunk>();
        foreach (var (sequence, numTokens) in _step)
        {
            var start = sequence.NumComputed;
            var place = _kvCache.PlaceOf(sequence.SequenceId);
            if (sequence.IsPrefilling)
            {
                var isLast = start + numTokens == sequence.NumPrefillTokens;
                prefills.Add(new PrefillChunk(sequence.SequenceId, start, sequence.Tokens(start, numTokens), isLast, place));
            }
            else
            {
                decodes.Add(new DecodeRow(sequence.SequenceId, sequence.LastTokenId, start, place));
            }
        }
        var plan = new StepPlan(decodes.ToImmutable(), prefills.ToImmutable())
        {
            NumCachedTokens = _numCachedTokens, SwapOuts = [.. _swapOuts], SwapIns = [.. _swapIns],
        };
        if (_idle.Count == 0)
        {
            return plan;
        }
        var idle = ImmutableArray.CreateBuilder<IdleSequence>(_idle.Count);
        foreach (var sequence in _idle)
        {
            idle.Add(new IdleSequence(sequence.SequenceId, sequence.NumComputed, _kvCache.PlaceOf(sequence.SequenceId)));
        }
        return plan with { Idle = idle.MoveToImmutable() };
    }
}

using System.Diagnostics;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// Continuous batching: requests join and leave between steps. A step is three calls —
/// <see cref="Scheduler.Schedule"/> → <see cref="IStepRunner.Execute"/> → <see cref="Update"/>.
/// Single-threaded: drive it from one thread (see <see cref="EngineHost"/> for the async front).
/// </summary>
public sealed class InferenceEngine : IDisposable
{
    private readonly IStepRunner _runner;
    private readonly IKvCacheManager _kvCache;
    private readonly Scheduler _scheduler;
    private readonly Sampler _sampler = new();
    private readonly GrammarSampling _grammarSampling;
    private float[] _logprobScratch = [];
    private readonly StopCondition _stopCondition;
    private readonly Dictionary<long, Sequence> _sequences = [];
    private readonly List<GenerationResult> _finished = [];
    private long _nextSequenceId;

    /// <param name="kvCache">The KV cache manager over <paramref name="runner"/>'s KV memory, opened with it (<see cref="Onnx.EngineVariant"/>).</param>
    /// <param name="cost">What each step moves and computes at the least, summed into <see cref="Statistics"/>; null: not counted.</param>
    internal InferenceEngine(IStepRunner runner, IKvCacheManager kvCache, EngineOptions options, ModelVocabulary vocabulary, StepCost? cost = null)
    {
        options.Validate();
        _runner = runner;
        _kvCache = kvCache;
        Options = options;
        Vocabulary = vocabulary;
        Cost = cost;
        _scheduler = new Scheduler(kvCache, runner.NumSlots, options.MaxScheduledTokens, options.Admission, options.KvAdmission, () => Statistics.SwapPays);
        _stopCondition = new StopCondition(vocabulary);
        _grammarSampling = new GrammarSampling(vocabulary, _sampler);
    }

    public EngineOptions Options { get; }

    /// <summary>What a step moves and computes at the least (the roofline's numerator), when the engine counts it.</summary>
    public StepCost? Cost { get; }

    public ModelVocabulary Vocabulary { get; }

    public int MaxSequenceLength => _runner.MaxLength;

    /// <summary>
    /// The most requests running at once: the KV slots (<see cref="EngineOptions.MaxBatchSize"/>, or what fit in memory),
    /// or for paged KV the batch cap.
    /// </summary>
    public int NumSlots => _runner.NumSlots;

    /// <summary>The KV cache in its manager's unit (slots or blocks) and how much of it running requests hold.</summary>
    public KvCacheUsage KvUsage => _kvCache.Usage;

    public long KvCacheBytes => _runner.KvCacheBytes;

    /// <summary>The graph picks greedy requests' tokens (its <c>greedy_ids</c> output): no logits row is read for them.</summary>
    public bool SelectsGreedyInGraph => _runner.SelectsGreedyInGraph;

    /// <summary>Sampled requests' tokens are drawn by the engine's <c>sampler.onnx</c> where the logits are (<see cref="SamplingSite"/>).</summary>
    public bool SamplesInGraph => _runner.SamplesInGraph;

    /// <summary>Decode steps replay as CUDA graphs (<see cref="EngineOptions.CudaGraphs"/>).</summary>
    public bool ReplaysCudaGraphs => _runner.ReplaysCudaGraphs;

    public bool HasWork => _scheduler.HasWork || _finished.Count > 0;

    public int NumWaiting => _scheduler.NumWaiting;

    public int NumRunning => _scheduler.NumRunning;

    public EngineStatistics Statistics { get; } = new();

    /// <summary>
    /// Queues a request; its id is the one <see cref="Cancel"/> takes. One that cannot run (empty prompt, longer than the
    /// context) fails alone at the next step. Each of its <see cref="GenerationRequest.NumChoices"/> ends in a result of its own.
    /// </summary>
    public long Submit(GenerationRequest request)
    {
        var sequence = new Sequence(_nextSequenceId++, request, Stopwatch.GetTimestamp());
        var (kind, error) = Validate(request);
        if (error is not null)
        {
            sequence.Status = SequenceStatus.Finished;
            _finished.Add(Result(sequence, FinishReason.Error, error, kind));
            EndUnforked(sequence, FinishReason.Error, error, kind);
            return sequence.SequenceId;
        }
        _sequences.Add(sequence.SequenceId, sequence);
        _scheduler.Add(sequence);
        return sequence.SequenceId;
    }

    /// <summary>Ends a request (every choice of it) early; its results (so far) come out of the next <see cref="Step"/>.</summary>
    /// <param name="sequenceId">What <see cref="Submit"/> returned.</param>
    public bool Cancel(long sequenceId)
    {
        var choices = _sequences.Values.Where(s => s.GroupId == sequenceId).ToList();
        foreach (var choice in choices)
        {
            End(choice, FinishReason.Cancelled, "cancelled");
        }
        return choices.Count > 0;
    }

    /// <summary>Runs one iteration and returns the requests that ended in it.</summary>
    public IReadOnlyList<GenerationResult> Step()
    {
        var plan = _scheduler.Schedule();
        if (!plan.SwapOuts.IsEmpty || !plan.SwapIns.IsEmpty)
        {
            // before the step, which may write into the blocks a swap-out leaves (even a step that runs nothing:
            // a request that preempted itself has left its blocks to the next step)
            var swapping = Stopwatch.GetTimestamp();
            if (!plan.SwapOuts.IsEmpty) _runner.SwapOut(plan.SwapOuts);
            if (!plan.SwapIns.IsEmpty) _runner.SwapIn(plan.SwapIns);
            Statistics.RecordSwaps(plan, Stopwatch.GetElapsedTime(swapping), _scheduler.NumSwapOuts);
        }
        if (!plan.IsEmpty)
        {
            if (_runner.SelectsGreedyInGraph || _runner.SamplesInGraph) plan = plan with { GraphPicks = GraphPicks(plan) };
            var started = Stopwatch.GetTimestamp();
            var slotsInUse = _scheduler.NumRunning;
            StepOutputs outputs;
            try
            {
                outputs = _runner.Execute(plan);
            }
            catch (InferenceException e)
            {
                FailAll(plan, e.Message);
                return TakeFinished();
            }
            Update(plan, outputs);
            Statistics.Record(plan, slotsInUse, _runner.NumSlots, Stopwatch.GetElapsedTime(started), _scheduler.NumPreemptions, outputs,
                Cost, _kvCache.NumEvictedBlocks);
        }
        return TakeFinished();
    }

    private void Update(StepPlan plan, StepOutputs outputs)
    {
        foreach (var row in plan.DecodeRows)
        {
            var sequence = _sequences[row.SequenceId];
            sequence.NumComputed++;
            _kvCache.CacheComputed(sequence);
        }
        foreach (var chunk in plan.Prefills)
        {
            var sequence = _sequences[chunk.SequenceId];
            sequence.NumComputed += chunk.TokenIds.Length;
            _kvCache.CacheComputed(sequence);
        }
        var now = Stopwatch.GetTimestamp();
        for (var i = 0; i < outputs.SequenceIds.Length; i++)
        {
            var sequence = _sequences[outputs.SequenceIds[i]];
            var forked = sequence.ChoicesToFork > 0 ? Fork(sequence) : [];
            Advance(sequence, outputs, i, now);
            foreach (var choice in forked)
            {
                Advance(choice, outputs, i, now); // its first token from the same logits, with its own draw
            }
        }
    }

    /// <summary>Appends <paramref name="sequence"/>'s next token, taken from row <paramref name="row"/>, and ends it if it stops there.</summary>
    private void Advance(Sequence sequence, StepOutputs outputs, int row, long now)
    {
        var token = NextToken(sequence, outputs, row);
        if (token < 0)
        {
            End(sequence, FinishReason.Error, "no token of the vocabulary continues the JSON text", GenerationErrorKind.InvalidRequest);
            return;
        }
        sequence.Logits?.Add(outputs.LogitsOf(row).ToArray());   // only with ReturnLogits: the runner reuses its buffer
        if (sequence.Logprobs is { } logprobs) logprobs.Add(LogprobsOf(outputs, row, token, sequence.Request.TopLogprobs!.Value));
        if (sequence.OutputIds.Count == 0)
        {
            sequence.FirstTokenTicks = now;
        }
        if (_stopCondition.Append(sequence, token, _runner.MaxLength) is { } reason)
        {
            End(sequence, reason, null);
        }
    }

    /// <summary>
    /// The choices <paramref name="parent"/> (choice 0, its prompt just computed) forks: each one the batch has room and
    /// the KV cache memory for runs on a copy of the parent's KV and is returned, to sample its first token from the
    /// parent's logits; the others wait in the queue and compute the prompt themselves.
    /// </summary>
    private List<Sequence> Fork(Sequence parent)
    {
        var forked = new List<Sequence>();
        var numChoices = parent.Request.NumChoices;
        for (var choice = numChoices - parent.ChoicesToFork; choice < numChoices; choice++)
        {
            var child = new Sequence(_nextSequenceId++, parent.Request, parent.ArrivalTicks, choice, parent.SequenceId);
            _sequences.Add(child.SequenceId, child);
            if (!_runner.CopiesKv || !_scheduler.TryFork(parent, child, out var fork))
            {
                _scheduler.Add(child);
                continue;
            }
            try
            {
                _runner.CopyKv(fork);
            }
            catch (InferenceException e)
            {
                End(child, FinishReason.Error, e.Message, GenerationErrorKind.ModelFailure);
                continue;
            }
            Statistics.RecordFork(fork);
            forked.Add(child);
        }
        parent.ChoicesToFork = 0;
        return forked;
    }

    /// <summary>Ends <paramref name="sequence"/> with a result, gives its KV back, and ends the choices it had still to fork alike.</summary>
    private void End(Sequence sequence, FinishReason reason, string? error, GenerationErrorKind kind = GenerationErrorKind.None)
    {
        _sequences.Remove(sequence.SequenceId);
        _scheduler.Finish(sequence);
        _finished.Add(Result(sequence, reason, error, kind));
        EndUnforked(sequence, reason, error, kind);
    }

    /// <summary>The choices <paramref name="parent"/> had still to fork end as it did, with nothing generated.</summary>
    private void EndUnforked(Sequence parent, FinishReason reason, string? error, GenerationErrorKind kind)
    {
        var numChoices = parent.Request.NumChoices;
        for (var choice = numChoices - parent.ChoicesToFork; choice < numChoices; choice++)
        {
            var unforked = new Sequence(_nextSequenceId++, parent.Request, parent.ArrivalTicks, choice, parent.SequenceId) { Status = SequenceStatus.Finished };
            _finished.Add(Result(unforked, reason, error, kind));
        }
        parent.ChoicesToFork = 0;
    }

    /// <summary>Row <paramref name="row"/>'s token: the runner's, or sampled here (under the grammar's mask when the request has one); −1: none is legal.</summary>
    private int NextToken(Sequence sequence, StepOutputs outputs, int row)
    {
        if (outputs.TryGetToken(row, out var token)) return token;
        var sampling = sequence.Sampling;
        var uniform = sampling.IsGreedy ? 0f : Sampler.Uniform(RngOf(sequence));
        if (sequence.Matcher is not { } matcher) return _sampler.Sample(outputs.LogitsOf(row), sampling, uniform);
        token = _grammarSampling.Pick(matcher, outputs.LogitsOf(row), sampling, uniform);
        if (token >= 0) _grammarSampling.Advance(matcher, token);
        return token;
    }

    /// <summary>Row <paramref name="row"/>'s log probabilities: the runner's, cut to <paramref name="numTop"/>, or taken here from its logits.</summary>
    private TokenLogprobs LogprobsOf(StepOutputs outputs, int row, int token, int numTop)
    {
        if (outputs.TryGetLogprobs(row, out var taken)) return taken.WithTop(numTop);
        var logits = outputs.LogitsOf(row);
        if (_logprobScratch.Length < logits.Length) _logprobScratch = new float[logits.Length];
        return TokenLogprobs.Of(logits, token, numTop, _logprobScratch);
    }

    /// <summary>
    /// The step's sequences whose token the runner's graphs can pick: greedy ones (argmax) and sampled ones without
    /// top-k, each with its one draw for this token, as far as the runner can, and none that reads its logits (returned,
    /// or to mask under its grammar); one that asks for log probabilities only when the runner takes them in its graphs.
    /// </summary>
    private Dictionary<long, GraphPick> GraphPicks(StepPlan plan)
    {
        var picks = new Dictionary<long, GraphPick>();
        foreach (var row in plan.DecodeRows)
        {
            AddGraphPick(row.SequenceId, picks);
        }
        foreach (var chunk in plan.Prefills)
        {
            if (chunk.NeedsLogits) AddGraphPick(chunk.SequenceId, picks);
        }
        return picks;
    }

    private void AddGraphPick(long sequenceId, Dictionary<long, GraphPick> picks)
    {
        var sequence = _sequences[sequenceId];
        var takesLogprobs = sequence.Logprobs is not null;
        if (sequence.ReadsLogits || (takesLogprobs && !_runner.TakesLogprobsInGraph)) return;
        var sampling = sequence.Sampling;
        if (sampling.IsGreedy ? _runner.SelectsGreedyInGraph : _runner.SamplesInGraph && !sampling.CutsTopK(_runner.VocabSize))
        {
            picks[sequenceId] = new GraphPick(sampling, sampling.IsGreedy ? 0f : Sampler.Uniform(RngOf(sequence)), takesLogprobs);
        }
    }

    /// <summary>The request's random stream: its seed's, or a random one; one draw per sampled token.</summary>
    private static SamplingRng RngOf(Sequence sequence) =>
        sequence.Rng ??= new SamplingRng(sequence.Sampling.Seed ?? (ulong)Random.Shared.NextInt64());

    private void FailAll(StepPlan plan, string message)
    {
        var ids = plan.DecodeRows.Select(r => r.SequenceId)
            .Concat(plan.Prefills.Select(p => p.SequenceId)).Distinct().ToList();
        foreach (var id in ids)
        {
            End(_sequences[id], FinishReason.Error, message, GenerationErrorKind.ModelFailure);
        }
    }

    /// <summary>
    /// The context rule: a prompt fits a context of <paramref name="contextLength"/> tokens when it leaves room for at
    /// least one generated token. Anything that counts prompts ahead of the engine asks this, not a rule of its own.
    /// </summary>
    public static bool FitsContext(int numPromptTokens, int contextLength) => numPromptTokens < contextLength;

    private (GenerationErrorKind Kind, string? Error) Validate(GenerationRequest request)
    {
        var error = InvalidRequestReason(request);
        if (error is not null)
        {
            return (GenerationErrorKind.InvalidRequest, error);
        }
        if (!FitsContext(request.PromptIds.Count, _runner.MaxLength))
        {
            return (GenerationErrorKind.PromptTooLong,
                $"the prompt has {request.PromptIds.Count} tokens; the context holds {_runner.MaxLength} (prompt + at least one generated token)");
        }
        return (GenerationErrorKind.None, null);
    }

    private string? InvalidRequestReason(GenerationRequest request)
    {
        if (request.PromptIds.Count == 0)
        {
            return "the prompt is empty";
        }
        if (request.NumChoices is < 1 or > GenerationRequest.MaxChoices)
        {
            return $"the number of choices must be between 1 and {GenerationRequest.MaxChoices}, got {request.NumChoices}";
        }
        if (request.TopLogprobs is < 0 or > TokenLogprobs.MaxTop)
        {
            return $"top_logprobs must be between 0 and {TokenLogprobs.MaxTop}, got {request.TopLogprobs}";
        }
        if (request.MaxTokens < 1)
        {
            return $"max_tokens must be at least 1, got {request.MaxTokens}";
        }
        foreach (var id in request.PromptIds)
        {
            if (id < 0 || id >= _runner.VocabSize)
            {
                return $"prompt token id {id} is outside the vocabulary [0, {_runner.VocabSize})";
            }
        }
        if (request.Stop is { Count: > 0 } && !Vocabulary.CanDecode)
        {
            return "stop strings need a tokenizer, and this model package has none";
        }
        if (request.Grammar is not null && Vocabulary.TokenBytes is null)
        {
            return "JSON output (response_format) needs a tokenizer, and this model package has none";
        }
        return null;
    }

    private GenerationResult Result(Sequence sequence, FinishReason reason, string? error, GenerationErrorKind kind = GenerationErrorKind.None)
    {
        var ttft = sequence.FirstTokenTicks == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(sequence.ArrivalTicks, sequence.FirstTokenTicks);
        return new GenerationResult(
            sequence.Request.Id,
            sequence.OutputIds.ToArray(),
            error is null || reason == FinishReason.Cancelled ? _stopCondition.FinalText(sequence) : null,
            reason,
            sequence.PromptIds.Length,
            error,
            ttft,
            Stopwatch.GetElapsedTime(sequence.ArrivalTicks),
            kind,
            sequence.Logits,
            sequence.Logprobs?.Take(sequence.OutputIds.Count).ToList(), // a step that chose EOS adds no output token
            sequence.Choice);
    }

    private List<GenerationResult> TakeFinished()
    {
        var results = _finished.ToList();
        _finished.Clear();
        return results;
    }

    public void Dispose() => _runner.Dispose();
}

using System.Collections.Immutable;

namespace VicunaBatch.Inference.Engine;

internal enum SequenceStatus
{
    Waiting,
    Running,
    Finished,
}

/// <summary>
/// One choice of a request inside the engine, with its mutable state. Tokens = prompt ++ output. A request of n choices
/// is submitted as its choice 0, which forks choices 1 … n − 1 when its prompt is computed (<see cref="ChoicesToFork"/>).
/// </summary>
internal sealed class Sequence
{
    private readonly List<int> _outputIds = [];

    /// <param name="groupId">Choice 0's sequence id; null: this is choice 0.</param>
    public Sequence(long sequenceId, GenerationRequest request, long arrivalTicks, int choice = 0, long? groupId = null)
    {
        SequenceId = sequenceId;
        Request = request;
        Choice = choice;
        GroupId = groupId ?? sequenceId;
        ChoicesToFork = choice == 0 ? Math.Max(0, request.NumChoices - 1) : 0;
        Sampling = (request.Sampling ?? SamplingParams.Greedy).ForChoice(choice);
        PromptIds = request.PromptIds.ToArray();
        ArrivalTicks = arrivalTicks;
        Logits = request.ReturnLogits ? [] : null;
        Matcher = request.Grammar?.Start();
        Logprobs = request.TopLogprobs is null ? null : [];
        NumPrefillTokens = PromptIds.Length;
    }

    public long SequenceId { get; }

    public GenerationRequest Request { get; }

    /// <summary>Which of the request's <see cref="GenerationRequest.NumChoices"/> this is.</summary>
    public int Choice { get; }

    /// <summary>The sequence id of the request's choice 0, which every choice of it shares.</summary>
    public long GroupId { get; }

    /// <summary>Choices still to fork off this one (choice 0) once its prompt is computed; 0 after the fork.</summary>
    public int ChoicesToFork { get; set; }

    /// <summary>This choice's sampling: the request's, its seed moved by the choice (<see cref="SamplingParams.ForChoice"/>).</summary>
    public SamplingParams Sampling { get; }

    public int[] PromptIds { get; }

    public long ArrivalTicks { get; }

    public long FirstTokenTicks { get; set; }

    public SequenceStatus Status { get; set; } = SequenceStatus.Waiting;

    /// <summary>Tokens whose keys and values are in the KV cache.</summary>
    public int NumComputed { get; set; }

    /// <summary>
    /// Tokens fed as prefill before the request decodes: its prompt, or after a <see cref="Preempt"/> its prompt and
    /// every output so far (recomputed; the last chunk's logits sample the next output, so nothing is emitted twice).
    /// </summary>
    public int NumPrefillTokens { get; private set; }

    /// <summary>Times the request gave its KV back and was queued to be prefilled again.</summary>
    public int NumPreemptions { get; private set; }

    /// <summary>Its KV waits in host memory (<see cref="SwapOut"/>): it resumes where it stopped, nothing recomputed.</summary>
    public bool IsSwappedOut { get; private set; }

    public IReadOnlyList<int> OutputIds => _outputIds;

    public int NumTokens => PromptIds.Length + _outputIds.Count;

    public bool IsPrefilling => NumComputed < NumPrefillTokens;

    public int NumPrefillTokensLeft => NumPrefillTokens - NumComputed;

    /// <summary>The token fed at position <see cref="NumComputed"/> when decoding: the last one generated.</summary>
    public int LastTokenId => _outputIds.Count > 0 ? _outputIds[^1] : PromptIds[^1];

    /// <summary>Created at the first sample from the request's seed (or a random one).</summary>
    public SamplingRng? Rng { get; set; }

    /// <summary>Output text decoded so far (only kept when the request has stop strings).</summary>
    public string? Text { get; set; }

    /// <summary>Where a stop string matched in <see cref="Text"/>; the text is cut there.</summary>
    public int StopTextIndex { get; set; } = -1;

    /// <summary>The logits of each sampled step, [steps][vocab], when the request asked for them; else null.</summary>
    public List<float[]>? Logits { get; }

    /// <summary>Where the output is in the request's grammar, when it has one; else null.</summary>
    public Grammar.JsonMatcher? Matcher { get; }

    /// <summary>Each output token's log probabilities, when the request asked for them; else null.</summary>
    public List<TokenLogprobs>? Logprobs { get; }

    /// <summary>The request needs this step's logits row on the host: to return it, to mask it under its grammar, or for
    /// the choices it forks to sample their first tokens from (and take their log probabilities from). Log probabilities
    /// alone need it only from a runner that cannot take them in its graphs.</summary>
    public bool ReadsLogits => Logits is not null || Matcher is not null || ChoicesToFork > 0;

    public void Append(int tokenId) => _outputIds.Add(tokenId);

    /// <summary>Tokens [start, start + length) of prompt ++ output.</summary>
    public ImmutableArray<int> Tokens(int start, int length)
    {
        if (start < 0 || length < 0 || start + length > NumTokens)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"tokens [{start}, {start + length}) outside the {NumTokens} of sequence {SequenceId}");
        }
        var tokens = ImmutableArray.CreateBuilder<int>(length);
        for (var position = start; position < start + length; position++)
        {
            tokens.Add(position < PromptIds.Length ? PromptIds[position] : _outputIds[position - PromptIds.Length]);
        }
        return tokens.MoveToImmutable();
    }

    /// <summary>Swap preemption: its computed tokens' KV went to host memory; back to waiting, to resume as it was.</summary>
    public void SwapOut()
    {
        IsSwappedOut = true;
        Status = SequenceStatus.Waiting;
    }

    /// <summary>Its KV is back in device memory (<see cref="IKvCacheManager.TrySwapIn"/>); it runs again.</summary>
    public void SwapIn()
    {
        IsSwappedOut = false;
        Status = SequenceStatus.Running;
    }

    /// <summary>Recompute preemption: the KV cache is gone; back to waiting, to prefill prompt ++ output again.</summary>
    public void Preempt()
    {
        NumComputed = 0;
        NumPrefillTokens = NumTokens;
        NumPreemptions++;
        Status = SequenceStatus.Waiting;
    }
}

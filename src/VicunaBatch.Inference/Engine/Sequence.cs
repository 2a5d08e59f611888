using System.Collections.Immutable;

namespace VicunaBatch.Inference.Engine;

internal enum SequenceStatus
{
    Waiting,
    Running,
    Finished,
}

/// <summary>A request's mutable state inside the engine. Tokens = prompt ++ output.</summary>
internal sealed class Sequence
{
    private readonly List<int> _outputIds = [];

    public Sequence(long sequenceId, GenerationRequest request, long arrivalTicks)
    {
        SequenceId = sequenceId;
        Request = request;
        PromptIds = request.PromptIds.ToArray();
        ArrivalTicks = arrivalTicks;
        Logits = request.ReturnLogits ? [] : null;
        Matcher = request.Grammar?.Start();
        Logprobs = request.TopLogprobs is null ? null : [];
        NumPrefillTokens = PromptIds.Length;
    }

    public long SequenceId { get; }

    public GenerationRequest Request { get; }

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

    /// <summary>The request needs each step's logits row on the host: to return it, or to mask it under its grammar.
    /// (Log probabilities need it only from a runner that cannot take them in its graphs.)</summary>
    public bool ReadsLogits => Logits is not null || Matcher is not null;

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

    /// <summary>Recompute preemption: the KV cache is gone; back to waiting, to prefill prompt ++ output again.</summary>
    public void Preempt()
    {
        NumComputed = 0;
        NumPrefillTokens = NumTokens;
        NumPreemptions++;
        Status = SequenceStatus.Waiting;
    }
}

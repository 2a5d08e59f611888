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
    }

    public long SequenceId { get; }

    public GenerationRequest Request { get; }

    public int[] PromptIds { get; }

    public long ArrivalTicks { get; }

    public long FirstTokenTicks { get; set; }

    public SequenceStatus Status { get; set; } = SequenceStatus.Waiting;

    /// <summary>KV slot while running, else -1.</summary>
    public int Slot { get; set; } = -1;

    /// <summary>Tokens whose keys and values are in the slot (the slot's length).</summary>
    public int NumComputed { get; set; }

    public IReadOnlyList<int> OutputIds => _outputIds;

    public int NumTokens => PromptIds.Length + _outputIds.Count;

    public bool IsPrefilling => NumComputed < PromptIds.Length;

    public int NumPromptTokensLeft => PromptIds.Length - NumComputed;

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

    public void Append(int tokenId) => _outputIds.Add(tokenId);
}

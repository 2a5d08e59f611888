namespace VicunaBatch.Execution;

/// <summary>Generation parameters for requests that do not set them (the CLI's --max-tokens, --temperature).</summary>
public sealed class RequestDefaults
{
    /// <summary>Tokens to generate when a request gives no max_tokens. Default 256.</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>Sampling temperature when a request gives none. Default 0 (greedy).</summary>
    public float Temperature { get; init; }

    /// <summary>Nucleus mass when a request gives none. Default 1.</summary>
    public float TopP { get; init; } = 1f;

    public void Validate()
    {
        if (MaxTokens < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxTokens), MaxTokens, "must be at least 1");
        }
        if (Temperature is < 0 or > 2)
        {
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "must be in [0, 2]");
        }
        if (TopP is <= 0 or > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "must be in (0, 1]");
        }
    }
}

using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Ports;

/// <summary>Counts a request's prompt tokens the way the engine will (chat template included).
/// Optional: a host with a tokenizer supplies one; without it a dry run reports no token counts.</summary>
public interface IPromptTokenCounter
{
    /// <summary>Longest prompt + output the model accepts, in tokens.</summary>
    int ContextLength { get; }

    int CountPromptTokens(BatchRequest request);

    /// <summary>Whether a prompt of <paramref name="numPromptTokens"/> fits the context, by the engine's rule.</summary>
    bool FitsContext(int numPromptTokens);
}

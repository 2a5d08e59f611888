using System.Collections.Immutable;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Onnx;

/// <summary>Which prefill chunks of a step share one decoder call (<see cref="GqaRunner"/>).</summary>
internal static class PrefillCalls
{
    /// <summary>
    /// The step's prefill chunks in calls: whole new prompts (no past, last chunk) on consecutive slots go together,
    /// as GroupQueryAttention allows batch > 1 only for a first prompt, and a call binds one contiguous run of slots;
    /// B × S stays within the per-call token buffers. Every other chunk runs alone.
    /// </summary>
    public static IEnumerable<List<PrefillChunk>> Group(ImmutableArray<PrefillChunk> chunks, int maxTokensPerCall)
    {
        var group = new List<PrefillChunk>();
        var width = 0;
        foreach (var chunk in chunks)
        {
            var isWholePrompt = chunk.PastLength == 0 && chunk.NeedsLogits;
            var joins = isWholePrompt && group.Count > 0 && group[^1].PastLength == 0 && group[^1].NeedsLogits
                && KvSlot.IndexOf(chunk.Place) == KvSlot.IndexOf(group[^1].Place) + 1
                && (group.Count + 1) * Math.Max(width, chunk.TokenIds.Length) <= maxTokensPerCall;
            if (!joins && group.Count > 0)
            {
                yield return group;
                group = [];
                width = 0;
            }
            group.Add(chunk);
            width = Math.Max(width, chunk.TokenIds.Length);
        }
        if (group.Count > 0) yield return group;
    }
}

using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>The scheduler tests' stand-ins for the engine: a sequence of a numbered prompt, and the engine's update of a step.</summary>
internal static class SchedulerSteps
{
    /// <summary>Sequence <paramref name="id"/> with prompt tokens id*100, id*100+1, ...</summary>
    public static Sequence NewSequence(long id, int promptLength, int maxTokens = 100)
    {
        var prompt = Enumerable.Range(0, promptLength).Select(i => (int)id * 100 + i).ToArray();
        return new Sequence(id, new GenerationRequest($"r{id}", prompt, maxTokens), 0);
    }

    /// <summary>What <c>InferenceEngine.Update</c> does to each scheduled sequence, sampling <paramref name="token"/>.</summary>
    public static void Apply(StepPlan plan, IReadOnlyList<Sequence> sequences, int token)
    {
        var byId = sequences.ToDictionary(s => s.SequenceId);
        foreach (var row in plan.DecodeRows.Where(r => !r.IsFiller))
        {
            byId[row.SequenceId].NumComputed++;
            byId[row.SequenceId].Append(token);
        }
        foreach (var chunk in plan.Prefills)
        {
            var sequence = byId[chunk.SequenceId];
            Assert.Equal(sequence.NumComputed, chunk.PastLength);
            sequence.NumComputed += chunk.TokenIds.Length;
            if (chunk.NeedsLogits)
            {
                sequence.Append(token);
            }
        }
    }
}

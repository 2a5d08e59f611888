using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>Runs requests to the end in one engine, the way the engine tests compare results.</summary>
internal static class EngineRuns
{
    /// <summary>Submits every request at once and steps until the engine is idle; results by request id, one each.</summary>
    public static Dictionary<string, GenerationResult> RunTogether(InferenceEngine engine, IEnumerable<GenerationRequest> requests)
    {
        var submitted = requests.ToList();
        submitted.ForEach(r => engine.Submit(r));
        var results = new Dictionary<string, GenerationResult>();
        while (engine.HasWork)
        {
            foreach (var result in engine.Step())
            {
                results.Add(result.Id, result);
            }
        }
        Assert.Equal(submitted.Count, results.Count);
        return results;
    }
}

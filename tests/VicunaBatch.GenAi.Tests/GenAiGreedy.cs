using Microsoft.ML.OnnxRuntimeGenAI;

namespace VicunaBatch.GenAi.Tests;

/// <summary>One prompt's greedy continuation by ONNX Runtime GenAI: the new ids (end of sequence left out) and whether it ended there.</summary>
public sealed record GenAiContinuation(IReadOnlyList<int> Ids, bool EndedOnEos);

/// <summary>
/// ONNX Runtime GenAI's greedy search over a package folder, read unmodified (<c>new Model(dir)</c>): one generator per
/// prompt, so each prompt runs alone whatever the engine batches.
/// </summary>
public static class GenAiGreedy
{
    /// <summary>Up to <paramref name="maxTokens"/> new ids per prompt, in prompt order.</summary>
    public static IReadOnlyList<GenAiContinuation> Generate(string package, IReadOnlyList<int[]> prompts, int maxTokens, int eosTokenId = 2)
    {
        using var model = new Model(package);
        return prompts.Select(prompt => Continue(model, prompt, maxTokens, eosTokenId)).ToList();
    }

    private static GenAiContinuation Continue(Model model, int[] prompt, int maxTokens, int eosTokenId)
    {
        using var generatorParams = new GeneratorParams(model);
        generatorParams.SetSearchOption("do_sample", false);
        generatorParams.SetSearchOption("max_length", prompt.Length + maxTokens);   // GenAI counts the prompt in
        using var generator = new Generator(model, generatorParams);
        generator.AppendTokens(prompt);
        while (!generator.IsDone())
        {
            generator.GenerateNextToken();
        }
        // [prompt..., new ids..., eos when generated]
        var ids = generator.GetSequence(0)[prompt.Length..].ToArray().ToList();
        var endedOnEos = ids.Count > 0 && ids[^1] == eosTokenId;
        if (endedOnEos)
        {
            ids.RemoveAt(ids.Count - 1);
        }
        return new GenAiContinuation(ids, endedOnEos);
    }
}

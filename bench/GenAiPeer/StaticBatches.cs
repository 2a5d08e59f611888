using Microsoft.ML.OnnxRuntimeGenAI;

namespace GenAiPeer;

/// <summary>Tokens a run asked for (each request's max_tokens), tokens its batches computed (padding rows included), and
/// the seconds from the first request given to the last token (the model loaded before).</summary>
internal readonly record struct Generated(long Useful, long Computed, double Seconds);

/// <summary>
/// GenAI's batched generator through the managed API: the workload in order, <c>batchSize</c> requests a batch, prompts
/// left-padded with the pad token; a batch runs until its longest request is done (static batching).
/// </summary>
internal static class StaticBatches
{
    /// <param name="overlay">JSON overlaid on the package's genai_config.json (session options).</param>
    public static Generated Run(string package, string overlay, List<(int[] Prompt, int MaxTokens)> requests, int batchSize)
    {
        using var config = new Config(package);
        config.Overlay(overlay);
        using var model = new Model(config);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long useful = 0, computed = 0;
        for (var first = 0; first < requests.Count; first += batchSize)
        {
            var batch = requests.Skip(first).Take(batchSize).ToList();
            var width = batch.Max(r => r.Prompt.Length);
            var steps = batch.Max(r => r.MaxTokens);
            var ids = new int[batch.Count * width];                         // [batch, width], pad id 0 on the left
            for (var b = 0; b < batch.Count; b++)
            {
                batch[b].Prompt.CopyTo(ids, b * width + width - batch[b].Prompt.Length);
            }
            using var generatorParams = new GeneratorParams(model);
            generatorParams.SetSearchOption("batch_size", batch.Count);
            generatorParams.SetSearchOption("do_sample", false);
            generatorParams.SetSearchOption("max_length", width + steps);
            generatorParams.SetSearchOption("min_length", width + steps);  // EOS masked: every row runs every step
            using var generator = new Generator(model, generatorParams);
            generator.AppendTokens(ids);
            var made = 0;
            while (!generator.IsDone())
            {
                generator.GenerateNextToken();
                made++;
            }
            if (made != steps) throw new InvalidOperationException($"batch at {first}: {made} steps, expected {steps}");
            useful += batch.Sum(r => r.MaxTokens);
            computed += (long)batch.Count * steps;
        }
        return new Generated(useful, computed, clock.Elapsed.TotalSeconds);
    }
}

using VicunaBatch.Inference.Package;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// The least one engine step must move through memory and compute, from the package's shapes: a roofline's numerator,
/// which <see cref="EngineStatistics"/> sums over steps so a benchmark can set it against the card's measured copy
/// bandwidth and matmul rate. A step reads every weight once (<see cref="WeightBytes"/>: the decoder's files less the
/// embedding table, whose rows are gathered, not read whole) and, for each sequence it runs, the keys and values of its
/// past, writing those of its new tokens (<see cref="KvBytesPerToken"/> each). Its arithmetic is two FLOPs per weight
/// per token (<see cref="MatmulParams"/>) and, per layer and head, two products of head size over every
/// (query, key) pair of a causal attention (<see cref="AttentionFlopsPerPair"/>). Activations, norms and the logits are
/// left out: a lower bound.
/// </summary>
/// <param name="WeightBytes">Bytes of weights a step reads.</param>
/// <param name="KvBytesPerToken">Bytes of one token's keys and values over every layer.</param>
/// <param name="WeightElementBytes">Bytes per weight (2 for float16, 4 for float32): <see cref="MatmulParams"/> = bytes / this.
/// A quantized package's count is then an estimate.</param>
/// <param name="AttentionFlopsPerPair">FLOPs of one (query, key) pair over every layer and head: 4 × layers × heads × head size.</param>
public sealed record StepCost(long WeightBytes, long KvBytesPerToken, int WeightElementBytes, long AttentionFlopsPerPair)
{
    /// <summary>Weights a token multiplies: two FLOPs each.</summary>
    public long MatmulParams => WeightBytes / WeightElementBytes;

    /// <summary>Bytes <paramref name="plan"/> must move: the weights once, each row's past read and its new tokens written.</summary>
    public long Bytes(StepPlan plan)
    {
        var tokens = 0L;
        foreach (var row in plan.DecodeRows)
        {
            tokens += row.PastLength + 1;
        }
        foreach (var chunk in plan.Prefills)
        {
            tokens += chunk.PastLength + chunk.TokenIds.Length;
        }
        return WeightBytes + tokens * KvBytesPerToken;
    }

    /// <summary>FLOPs of <paramref name="plan"/>'s matrix products and causal attention.</summary>
    public double Flops(StepPlan plan)
    {
        var pairs = 0.0; // (query, key) pairs: a token at position p attends to p + 1 keys
        foreach (var row in plan.DecodeRows)
        {
            pairs += row.PastLength + 1;
        }
        foreach (var chunk in plan.Prefills)
        {
            double length = chunk.TokenIds.Length;
            pairs += length * chunk.PastLength + length * (length + 1) / 2;
        }
        return 2.0 * MatmulParams * plan.NumScheduledTokens + AttentionFlopsPerPair * pairs;
    }

    /// <summary>
    /// The cost model of <paramref name="package"/>: its weight bytes from its files (every file but its configuration,
    /// tokenizer and notes), less the embedding table (vocab × hidden at <paramref name="activationElementBytes"/>, the
    /// precision the exports keep it in), weights counted at that element size; each token's K and V at
    /// <paramref name="kvElementBytes"/> (1 for an int8 cache).
    /// </summary>
    public static StepCost Of(ModelPackage package, int kvElementBytes, int activationElementBytes)
    {
        var model = package.Config.Model;
        var decoder = model.Decoder;
        var fileBytes = package.Files.Sizes().Where(f => IsWeights(f.Name)).Sum(f => f.NumBytes);
        var embedding = (long)model.VocabSize * decoder.HiddenSize * activationElementBytes;
        return new StepCost(
            Math.Max(0, fileBytes - embedding),
            2L * decoder.NumHiddenLayers * decoder.NumKeyValueHeads * decoder.HeadSize * kvElementBytes,
            activationElementBytes,
            4L * decoder.NumHiddenLayers * decoder.NumAttentionHeads * decoder.HeadSize);
    }

    private static bool IsWeights(string name) =>
        !name.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && !name.EndsWith(".md", StringComparison.OrdinalIgnoreCase)
        && !name.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) && !name.StartsWith("tokenizer", StringComparison.OrdinalIgnoreCase);
}

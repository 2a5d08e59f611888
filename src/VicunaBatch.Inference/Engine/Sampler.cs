using System.Numerics.Tensors;

namespace VicunaBatch.Inference.Engine;

/// <summary>Picks the next token from one row of logits: greedy, or temperature with top-k and top-p.</summary>
internal sealed class Sampler
{
    private float[] _probs = [];
    private int[] _order = [];

    public int Sample(ReadOnlySpan<float> logits, SamplingParams sampling, SamplingRng rng)
    {
        if (sampling.IsGreedy)
        {
            return TensorPrimitives.IndexOfMax(logits);
        }
        var vocab = logits.Length;
        if (_probs.Length < vocab)
        {
            _probs = new float[vocab];
            _order = new int[vocab];
        }
        var probs = _probs.AsSpan(0, vocab);
        // softmax(logits / T), computed stably
        var max = TensorPrimitives.Max(logits);
        var invT = 1f / sampling.Temperature;
        for (var i = 0; i < vocab; i++)
        {
            probs[i] = (logits[i] - max) * invT;
        }
        TensorPrimitives.Exp(probs, probs);

        var topK = sampling.TopK > 0 && sampling.TopK < vocab ? sampling.TopK : vocab;
        if (topK == vocab && sampling.TopP >= 1f)
        {
            return SampleFrom(probs, rng.NextDouble() * TensorPrimitives.Sum(probs));
        }
        return SampleTruncated(probs, topK, sampling.TopP, rng);
    }

    private static int SampleFrom(ReadOnlySpan<float> weights, double target)
    {
        double cumulative = 0;
        for (var i = 0; i < weights.Length; i++)
        {
            cumulative += weights[i];
            if (target < cumulative)
            {
                return i;
            }
        }
        // rounding left the target at the very end: the last token with any weight
        for (var i = weights.Length - 1; i >= 0; i--)
        {
            if (weights[i] > 0)
            {
                return i;
            }
        }
        return weights.Length - 1;
    }

    /// <summary>Sorts candidates by probability (ties by id, so the order is deterministic) and keeps the head.</summary>
    private int SampleTruncated(Span<float> probs, int topK, float topP, SamplingRng rng)
    {
        var vocab = probs.Length;
        var order = _order.AsSpan(0, vocab);
        for (var i = 0; i < vocab; i++)
        {
            order[i] = i;
        }
        var probsArray = _probs;
        order.Sort((a, b) =>
        {
            var byProb = probsArray[b].CompareTo(probsArray[a]);
            return byProb != 0 ? byProb : a.CompareTo(b);
        });

        double total = 0;
        for (var i = 0; i < topK; i++)
        {
            total += probs[order[i]];
        }
        var keep = topK;
        if (topP < 1f)
        {
            double cumulative = 0;
            for (var i = 0; i < topK; i++)
            {
                cumulative += probs[order[i]];
                if (cumulative >= topP * total)
                {
                    keep = i + 1;
                    break;
                }
            }
        }
        double kept = 0;
        for (var i = 0; i < keep; i++)
        {
            kept += probs[order[i]];
        }
        var target = rng.NextDouble() * kept;
        double running = 0;
        for (var i = 0; i < keep; i++)
        {
            running += probs[order[i]];
            if (target < running)
            {
                return order[i];
            }
        }
        return order[keep - 1];
    }
}

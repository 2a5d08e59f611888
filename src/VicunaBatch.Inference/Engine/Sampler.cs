using System.Numerics;
using System.Numerics.Tensors;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// Picks the next token from one row of logits: greedy, or temperature with top-k and top-p. The one definition of
/// sampling, which <c>Onnx/sampler.onnx</c> (<see cref="Onnx.GraphSampler"/>) computes on the device step for step
/// (all but top-k), so a seeded request draws the same tokens wherever its logits are, short of float rounding:
/// <list type="number">
/// <item>weights w_i = exp((l_i − max l) / T), so the largest is 1;</item>
/// <item>top-k (0 &lt; k &lt; vocab): weights below the k-th largest become 0 (ties at it are kept);</item>
/// <item>top-p (&lt; 1): weights below τ become 0, τ the largest threshold whose weights ≥ τ still carry top_p of the
/// total — found by narrowing [0, 1] to 2^-32 (<see cref="TopPThreshold"/>), which keeps the same tokens as sorting
/// and summing from the top, short of ties within 2^-32 of τ;</item>
/// <item>u, the request's one uniform draw for this token (<see cref="Uniform"/>), picks the first id whose running
/// sum of the kept weights, in id order, exceeds u × their total (found block by block, <see cref="Draw"/>).</item>
/// </list>
/// No step sorts the vocabulary: a row costs a few passes over it.
/// </summary>
internal sealed class Sampler
{
    /// <summary>The top-p threshold's search: rounds, and parts each round splits its interval into (4^16 = 2^32); the graph unrolls the same.
    /// Few ways, many rounds: on the GPU a round costs its [rows, ways − 1, vocab] tensors (docs/performance.md, "4 ways × 16 rounds").</summary>
    public const int TopPRounds = 16, TopPWays = 4;

    /// <summary>Ids per block of the draw's two levels; the graph uses the same.</summary>
    public const int DrawBlock = 64;

    private float[] _weights = [];
    private float[] _blockSums = [];
    private float[] _candidates = [];

    /// <summary>The draw a sampled token uses, as the graph takes it: float32, and below 1 after the cast.</summary>
    public static float Uniform(SamplingRng rng) => MathF.Min((float)rng.NextDouble(), 1f - 1f / (1 << 24));

    public int Sample(ReadOnlySpan<float> logits, SamplingParams sampling, float uniform) =>
        sampling.IsGreedy ? TensorPrimitives.IndexOfMax(logits) : Draw(KeptWeights(logits, sampling), uniform);

    /// <summary>Steps 1–3: the weights a sampled token is drawn from, 0 for every token cut (valid until the next call).</summary>
    internal ReadOnlySpan<float> KeptWeights(ReadOnlySpan<float> logits, SamplingParams sampling)
    {
        var vocab = logits.Length;
        if (_weights.Length < vocab)
        {
            _weights = new float[vocab];
        }
        var w = _weights.AsSpan(0, vocab);
        TensorPrimitives.Subtract(logits, TensorPrimitives.Max(logits), w);
        TensorPrimitives.Multiply(w, 1f / sampling.Temperature, w);
        TensorPrimitives.Exp(w, w);

        if (sampling.CutsTopK(vocab))
        {
            ZeroBelow(w, KthLargest(w, sampling.TopK));
        }
        if (sampling.TopP < 1f)
        {
            ZeroBelow(w, TopPThreshold(w, sampling.TopP));
        }
        return w;
    }

    /// <summary>
    /// Exactly the k-th largest weight, without sorting: weights are in [0, 1], where a float's bits order like an
    /// integer, so it is the largest bit pattern t with at least k weights ≥ t — a binary search over the patterns.
    /// </summary>
    private static float KthLargest(ReadOnlySpan<float> w, int k)
    {
        int lo = 0, hi = BitConverter.SingleToInt32Bits(1f); // at least k weights are ≥ the pattern lo
        while (lo < hi)
        {
            var mid = lo + (hi - lo + 1) / 2;
            if (CountAtOrAbove(w, BitConverter.Int32BitsToSingle(mid)) >= k) lo = mid;
            else hi = mid - 1;
        }
        return BitConverter.Int32BitsToSingle(lo);
    }

    private static int CountAtOrAbove(ReadOnlySpan<float> w, float threshold)
    {
        var at = new Vector<float>(threshold);
        var count = Vector<int>.Zero;
        var i = 0;
        for (; i <= w.Length - Vector<float>.Count; i += Vector<float>.Count)
        {
            count -= Vector.GreaterThanOrEqual(new Vector<float>(w[i..]), at); // true lanes are -1
        }
        var total = Vector.Sum(count);
        for (; i < w.Length; i++)
        {
            if (w[i] >= threshold) total++;
        }
        return total;
    }

    /// <summary>
    /// The largest τ with Σ w_i≥τ ≥ topP × Σ w, to 2^-32 of [0, 1]: <see cref="TopPRounds"/> rounds, each trying the
    /// <see cref="TopPWays"/> − 1 thresholds lo + k × step, moving lo to the last that holds and dividing step by
    /// <see cref="TopPWays"/> — the graph's float operations, so both narrow to the same τ. Only the weights inside
    /// [lo, lo + step) are passed over again; those above count as one sum.
    /// </summary>
    private float TopPThreshold(ReadOnlySpan<float> w, float topP)
    {
        var need = topP * MassAtOrAbove(w, 0f);
        if (_candidates.Length < w.Length)
        {
            _candidates = new float[w.Length];
        }
        var candidates = _candidates.AsSpan(0, w.Length);
        w.CopyTo(candidates);
        float lo = 0f, step = 1f / TopPWays, above = 0f;
        for (var round = 0; round < TopPRounds; round++)
        {
            var holding = 0f;
            for (var k = 1; k < TopPWays; k++)
            {
                if (above + MassAtOrAbove(candidates, lo + step * k) >= need) holding++;
            }
            lo += step * holding;
            var hi = lo + step; // the weights at or above it pass every threshold from here on
            step *= 1f / TopPWays;
            var kept = 0;
            foreach (var x in candidates)
            {
                if (x >= hi) above += x;
                else if (x >= lo) candidates[kept++] = x;
            }
            candidates = candidates[..kept];
        }
        return lo;
    }

    private static float MassAtOrAbove(ReadOnlySpan<float> w, float threshold)
    {
        var at = new Vector<float>(threshold);
        var sum = Vector<float>.Zero;
        var i = 0;
        for (; i <= w.Length - Vector<float>.Count; i += Vector<float>.Count)
        {
            var v = new Vector<float>(w[i..]);
            sum += Vector.ConditionalSelect(Vector.GreaterThanOrEqual(v, at), v, Vector<float>.Zero);
        }
        var total = Vector.Sum(sum);
        for (; i < w.Length; i++)
        {
            if (w[i] >= threshold) total += w[i];
        }
        return total;
    }

    private static void ZeroBelow(Span<float> w, float threshold)
    {
        for (var i = 0; i < w.Length; i++)
        {
            if (w[i] < threshold) w[i] = 0f;
        }
    }

    /// <summary>
    /// The first id whose running sum exceeds uniform × the total, found in two levels as the graph finds it: the
    /// first block of <see cref="DrawBlock"/> ids whose running end passes the target, then the first id inside it.
    /// Every sum adds in id order, one element after another, as ONNX Runtime's CumSum kernels do, so the two agree to
    /// the bit on the same weights. No id of that block passing (rounding past the end): the heaviest id.
    /// </summary>
    private int Draw(ReadOnlySpan<float> w, float uniform)
    {
        var numBlocks = (w.Length + DrawBlock - 1) / DrawBlock;
        if (_blockSums.Length < numBlocks)
        {
            _blockSums = new float[numBlocks];
        }
        var sums = _blockSums.AsSpan(0, numBlocks);
        var total = 0f;
        for (var b = 0; b < numBlocks; b++)
        {
            var sum = 0f;
            foreach (var x in w.Slice(b * DrawBlock, Math.Min(DrawBlock, w.Length - b * DrawBlock)))
            {
                sum += x;
            }
            sums[b] = sum;
            total += sum;
        }
        var target = uniform * total;
        var block = numBlocks - 1;
        var before = 0f;
        for (var b = 0; b < numBlocks; b++)
        {
            var through = before + sums[b];
            if (target < through || b == numBlocks - 1)
            {
                block = b;
                break;
            }
            before = through;
        }
        var rest = target - before;
        var inBlock = 0f;
        var start = block * DrawBlock;
        for (var i = start; i < Math.Min(start + DrawBlock, w.Length); i++)
        {
            inBlock += w[i];
            if (rest < inBlock)
            {
                return i;
            }
        }
        return TensorPrimitives.IndexOfMax(w);
    }
}

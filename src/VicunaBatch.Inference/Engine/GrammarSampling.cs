using System.Numerics;
using System.Numerics.Tensors;
using VicunaBatch.Inference.Grammar;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// Picks the next token of a request constrained by a <see cref="JsonGrammar"/>, on the host: every token whose text
/// the request's <see cref="JsonMatcher"/> cannot read next gets −∞, end of sequence only once the value is whole,
/// then <see cref="Sampler"/> picks as for any request (greedy by shorter roads to the same id). The mask is a bit per
/// token id, rebuilt each step.
/// </summary>
internal sealed class GrammarSampling(ModelVocabulary vocabulary, Sampler sampler)
{
    private ulong[] _allowed = [];  // [ceil(vocab / 64)] bits
    private float[] _masked = [];   // [vocab]

    /// <returns>The token, or −1 when no token of the vocabulary continues the text.</returns>
    public int Pick(JsonMatcher matcher, ReadOnlySpan<float> logits, SamplingParams sampling, float uniform)
    {
        var allowed = Mask(matcher, logits.Length);
        if (_masked.Length < logits.Length) _masked = new float[logits.Length];
        var masked = _masked.AsSpan(0, logits.Length);
        if (sampling.IsGreedy) return PickGreedy(allowed, logits, masked);
        return CopyAllowed(allowed, logits, masked) ? sampler.Sample(masked, sampling, uniform) : -1;
    }

    /// <summary>
    /// The id greedy <see cref="Sampler.Sample"/> picks from the masked row (or −1), by the cheapest road that gives
    /// the same id: few allowed ids read one by one; else the whole row's pick when it is allowed (masking only
    /// lowers other ids, so it stays first); else the masked row.
    /// </summary>
    internal static int PickGreedy(ReadOnlySpan<ulong> allowed, ReadOnlySpan<float> logits, Span<float> masked)
    {
        var few = ArgMaxOfFew(allowed, logits);
        if (few != TooMany) return few;
        var top = TensorPrimitives.IndexOfMax(logits);
        if ((allowed[top >> 6] >> (top & 63) & 1) != 0) return top;
        return CopyAllowed(allowed, logits, masked) ? TensorPrimitives.IndexOfMax<float>(masked) : -1;
    }

    /// <summary>From <see cref="ArgMaxOfFew"/>: too many ids allowed (or all at −∞), the masked row decides.</summary>
    internal const int TooMany = -2;

    /// <summary>Most allowed ids that greedy reads one at a time; more are faster as a masked row and a vector search.</summary>
    private const int MaxFew = 2048;

    /// <summary>
    /// Greedy over the allowed ids alone, the id <see cref="Sampler"/> picks from the masked row: the first NaN, else
    /// the first largest (+0 above −0). −1: no id allowed; <see cref="TooMany"/>: over <see cref="MaxFew"/> allowed, or
    /// every allowed logit −∞, where the masked row answers (its first id, allowed or not).
    /// </summary>
    internal static int ArgMaxOfFew(ReadOnlySpan<ulong> allowed, ReadOnlySpan<float> logits)
    {
        var words = allowed[..Math.Min(allowed.Length, (logits.Length + 63) / 64)];
        var count = 0;
        foreach (var word in words) count += BitOperations.PopCount(word);
        if (count > MaxFew) return TooMany;
        var (best, bestValue) = (-1, float.NegativeInfinity);
        for (var w = 0; w < words.Length; w++)
        {
            for (var word = words[w]; word != 0; word &= word - 1)
            {
                var id = w * 64 + BitOperations.TrailingZeroCount(word);
                if (id >= logits.Length) break;
                var value = logits[id];
                if (float.IsNaN(value)) return id;
                if (best < 0 || value > bestValue || value == 0f && bestValue == 0f && float.IsNegative(bestValue) && !float.IsNegative(value))
                {
                    (best, bestValue) = (id, value);
                }
            }
        }
        return best >= 0 && float.IsNegativeInfinity(bestValue) ? TooMany : best;
    }

    /// <summary>
    /// <paramref name="masked"/>: the allowed logits, −∞ elsewhere; false when no id below the row's length is allowed.
    /// A word of bits at a time: whole runs of 64 allowed ids are one copy, a sparse word only its set bits.
    /// </summary>
    internal static bool CopyAllowed(ReadOnlySpan<ulong> allowed, ReadOnlySpan<float> logits, Span<float> masked)
    {
        masked.Fill(float.NegativeInfinity);
        var any = false;
        for (var w = 0; w < allowed.Length && w * 64 < logits.Length; w++)
        {
            var word = allowed[w];
            var start = w * 64;
            if (word == ulong.MaxValue && start + 64 <= logits.Length)
            {
                logits.Slice(start, 64).CopyTo(masked[start..]);
                any = true;
                continue;
            }
            for (; word != 0; word &= word - 1)
            {
                var id = start + BitOperations.TrailingZeroCount(word);
                if (id >= logits.Length) break;
                masked[id] = logits[id];
                any = true;
            }
        }
        return any;
    }

    /// <summary>The tokens <paramref name="matcher"/> allows next, as bits over [0, <paramref name="vocab"/>) (valid until the next call).</summary>
    public ReadOnlySpan<ulong> Mask(JsonMatcher matcher, int vocab)
    {
        var trie = vocabulary.Trie ?? throw new InvalidOperationException("constrained output needs the vocabulary's token texts");
        var words = (Math.Max(vocab, trie.VocabSize) + 63) / 64;
        if (_allowed.Length < words) _allowed = new ulong[words];
        var allowed = _allowed.AsSpan(0, words);
        allowed.Clear();
        trie.Allow(matcher, allowed);
        if (matcher.CanEnd)
        {
            foreach (var eos in vocabulary.EosTokenIds) allowed[eos >> 6] |= 1UL << (eos & 63);
        }
        return allowed;
    }

    /// <summary>Moves <paramref name="matcher"/> past <paramref name="token"/> (end of sequence: nothing to read).</summary>
    public void Advance(JsonMatcher matcher, int token)
    {
        if (vocabulary.IsEos(token)) return;
        if (!matcher.TryAdvance(vocabulary.TokenBytes![token]))
        {
            throw new InvalidOperationException($"token {token} was picked under the grammar's mask but does not continue the text");
        }
    }
}

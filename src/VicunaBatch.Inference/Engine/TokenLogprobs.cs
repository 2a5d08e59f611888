using System.Numerics.Tensors;

namespace VicunaBatch.Inference.Engine;

/// <summary>One token and its log probability under the model.</summary>
public readonly record struct LogprobEntry(int TokenId, float Logprob);

/// <summary>
/// A generated token's log probability and the most likely tokens at its step, most likely first (<see cref="Top"/>
/// may hold the chosen token too). Log probabilities are the log-softmax of the raw logits, before temperature, top-k
/// and top-p: what the model gives each token, the same whatever the request's sampling, as OpenAI and vLLM's
/// default (<c>raw_logprobs</c>) report them.
/// </summary>
public sealed record TokenLogprobs(LogprobEntry Chosen, IReadOnlyList<LogprobEntry> Top)
{
    /// <summary>Largest <see cref="GenerationRequest.TopLogprobs"/>: OpenAI's bound.</summary>
    public const int MaxTop = 20;

    /// <summary>The log probabilities of <paramref name="token"/> and of the <paramref name="numTop"/> largest logits of
    /// one row. Ties order by the lower id. <paramref name="scratch"/> holds a vocabulary's floats.</summary>
    public static TokenLogprobs Of(ReadOnlySpan<float> logits, int token, int numTop, Span<float> scratch)
    {
        var logSum = LogSumExp(logits, scratch[..logits.Length]);
        var top = new LogprobEntry[Math.Min(numTop, logits.Length)];
        var ids = TopIds(logits, top.Length);
        for (var i = 0; i < top.Length; i++)
        {
            top[i] = new LogprobEntry(ids[i], logits[ids[i]] - logSum);
        }
        return new TokenLogprobs(new LogprobEntry(token, logits[token] - logSum), top);
    }

    /// <summary>The chosen token with only the first <paramref name="numTop"/> of <see cref="Top"/>.</summary>
    public TokenLogprobs WithTop(int numTop) => numTop >= Top.Count ? this : this with { Top = Top.Take(numTop).ToArray() };

    /// <summary>log Σ exp(l_i), shifted by the largest logit so no exp overflows.</summary>
    private static float LogSumExp(ReadOnlySpan<float> logits, Span<float> scratch)
    {
        var max = TensorPrimitives.Max(logits);
        TensorPrimitives.Subtract(logits, max, scratch);
        TensorPrimitives.Exp(scratch, scratch);
        return max + MathF.Log(TensorPrimitives.Sum(scratch));
    }

    /// <summary>The ids of the <paramref name="k"/> largest logits, largest first, in one pass: k stays small (at most
    /// <see cref="MaxTop"/>), so an insertion into a sorted list of k beats sorting the vocabulary.</summary>
    private static int[] TopIds(ReadOnlySpan<float> logits, int k)
    {
        var ids = new int[k];
        var count = 0;
        for (var id = 0; id < logits.Length && k > 0; id++)
        {
            var value = logits[id];
            if (count == k && !(value > logits[ids[k - 1]])) continue;
            var at = Math.Min(count, k - 1);
            while (at > 0 && value > logits[ids[at - 1]])
            {
                ids[at] = ids[at - 1];
                at--;
            }
            ids[at] = id;
            count = Math.Min(count + 1, k);
        }
        return ids;
    }
}

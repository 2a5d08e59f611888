using System.Text;
using VicunaBatch.Core.Results;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Text;

namespace VicunaBatch.Execution;

/// <summary>
/// The engine's log probabilities of one generation as a choice reports them: each token as its text and UTF-8 bytes
/// (<see cref="TextTokenizer.TokenBytes"/>), and where it starts in the choice's text.
/// </summary>
internal static class ChoiceLogprobs
{
    public static IReadOnlyList<TokenLogprob> Of(TextTokenizer tokenizer, GenerationResult result)
    {
        var logprobs = result.Logprobs ?? throw new ArgumentException($"generation {result.Id} has no log probabilities", nameof(result));
        var decoder = new IncrementalDecoder(tokenizer);
        var offset = 0;
        var tokens = new List<TokenLogprob>(logprobs.Count);
        foreach (var step in logprobs)
        {
            var top = step.Top.Select(t => Top(tokenizer, t)).ToList();
            var chosen = Top(tokenizer, step.Chosen);
            tokens.Add(new TokenLogprob(chosen.Token, chosen.Logprob, chosen.Bytes, offset, top));
            offset += decoder.Append(step.Chosen.TokenId).Length;
        }
        return tokens;
    }

    private static TopLogprob Top(TextTokenizer tokenizer, LogprobEntry entry)
    {
        var bytes = tokenizer.TokenBytes(entry.TokenId);
        return new TopLogprob(Encoding.UTF8.GetString(bytes), entry.Logprob, bytes.Select(b => (int)b).ToList());
    }
}

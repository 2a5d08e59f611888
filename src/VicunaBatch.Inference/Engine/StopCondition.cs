namespace VicunaBatch.Inference.Engine;

/// <summary>Appends a sampled token and says whether the request ends: EOS, a stop string, max_tokens, the end of the context.</summary>
internal sealed class StopCondition(ModelVocabulary vocabulary)
{
    /// <returns>The finish reason when the request ends with this token, else null.</returns>
    public FinishReason? Append(Sequence sequence, int token, int maxLength)
    {
        var request = sequence.Request;
        if (!request.IgnoreEos && vocabulary.IsEos(token))
        {
            return FinishReason.Stop;
        }
        sequence.Append(token);
        if (request.Stop is { Count: > 0 } stops && MatchesStop(sequence, stops))
        {
            return FinishReason.Stop;
        }
        if (sequence.OutputIds.Count >= request.MaxTokens)
        {
            return FinishReason.Length;
        }
        // the token just sampled has no room to be fed back: position NumTokens - 1 must be < maxLength
        if (sequence.NumTokens >= maxLength)
        {
            return FinishReason.Length;
        }
        return null;
    }

    public string? FinalText(Sequence sequence)
    {
        if (!vocabulary.CanDecode)
        {
            return null;
        }
        var text = sequence.Text ?? vocabulary.Decode(sequence.OutputIds)!;
        return sequence.StopTextIndex >= 0 ? text[..sequence.StopTextIndex] : text;
    }

    /// <summary>
    /// Decodes the output so far and looks for a stop string in the part that could contain a new match
    /// (the tail that is at most the longest stop string plus the newly added text).
    /// </summary>
    private bool MatchesStop(Sequence sequence, IReadOnlyList<string> stops)
    {
        var previousLength = sequence.Text?.Length ?? 0;
        var text = vocabulary.Decode(sequence.OutputIds)!;
        sequence.Text = text;
        var longest = stops.Max(s => s.Length);
        var from = Math.Max(0, Math.Min(previousLength, text.Length) - longest);
        var best = -1;
        foreach (var stop in stops)
        {
            if (stop.Length == 0)
            {
                continue;
            }
            var index = text.IndexOf(stop, from, StringComparison.Ordinal);
            if (index >= 0 && (best < 0 || index < best))
            {
                best = index;
            }
        }
        if (best < 0)
        {
            return false;
        }
        sequence.StopTextIndex = best;
        return true;
    }
}

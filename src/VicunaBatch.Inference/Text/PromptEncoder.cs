namespace VicunaBatch.Inference.Text;

/// <summary>A completion prompt as ids for the engine (chat prompts: <see cref="VicunaChatTemplate.EncodePrompt"/>).</summary>
public static class PromptEncoder
{
    /// <summary>Completion prompt: BOS followed by the SentencePiece ids of <paramref name="text"/>.</summary>
    public static IReadOnlyList<int> EncodeCompletion(TextTokenizer tokenizer, string text)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var ids = new List<int> { tokenizer.BosId };
        ids.AddRange(tokenizer.Encode(text));
        return ids;
    }
}

namespace VicunaBatch.Inference.Text;

/// <summary>Turns requests into prompt ids for the engine.</summary>
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

    /// <summary>Chat prompt in the Vicuna v1.1 format; see <see cref="VicunaChatTemplate.EncodePrompt"/>.</summary>
    public static IReadOnlyList<int> EncodeChat(TextTokenizer tokenizer, IReadOnlyList<ChatMessage> messages) =>
        VicunaChatTemplate.EncodePrompt(tokenizer, messages);
}

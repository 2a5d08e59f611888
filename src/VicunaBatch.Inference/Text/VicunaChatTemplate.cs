using System.Text;

namespace VicunaBatch.Inference.Text;

/// <summary>
/// FastChat's <c>vicuna_v1.1</c> conversation (SeparatorStyle.ADD_COLON_TWO, sep " ", sep2 "&lt;/s&gt;"):
/// <c>system + " " + "USER: q1" + " " + "ASSISTANT: a1" + "&lt;/s&gt;" + "USER: q2" + " " + "ASSISTANT:"</c>.
/// </summary>
public static class VicunaChatTemplate
{
    public const string DefaultSystemPrompt =
        "A chat between a curious user and an artificial intelligence assistant. " +
        "The assistant gives helpful, detailed, and polite answers to the user's questions.";

    private const string EndOfTurn = "</s>";

    /// <summary>The prompt text exactly as FastChat's <c>get_prompt()</c> builds it, ending with "ASSISTANT:".</summary>
    public static string FormatPrompt(IReadOnlyList<ChatMessage> messages)
    {
        var prompt = new StringBuilder();
        foreach (string segment in Segments(messages))
        {
            prompt.Append(segment);
        }
        return prompt.ToString();
    }

    /// <summary>
    /// BOS, then the SentencePiece ids of the text between turn ends, with each "&lt;/s&gt;" that closes an
    /// assistant turn as the EOS id rather than the text "&lt;/s&gt;".
    /// </summary>
    public static IReadOnlyList<int> EncodePrompt(TextTokenizer tokenizer, IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var ids = new List<int> { tokenizer.BosId };
        var text = new StringBuilder();
        foreach (string segment in Segments(messages))
        {
            if (segment == EndOfTurn)
            {
                ids.AddRange(tokenizer.Encode(text.ToString()));
                ids.Add(tokenizer.EosId);
                text.Clear();
            }
            else
            {
                text.Append(segment);
            }
        }
        ids.AddRange(tokenizer.Encode(text.ToString()));
        return ids;
    }

    /// <summary>Prompt pieces in order; a piece equal to "&lt;/s&gt;" ends an assistant turn.</summary>
    private static IEnumerable<string> Segments(IReadOnlyList<ChatMessage> messages)
    {
        Validate(messages);
        bool hasSystem = messages[0].Role == ChatMessage.SystemRole;
        yield return hasSystem ? messages[0].Content : DefaultSystemPrompt;
        yield return " ";
        for (int i = hasSystem ? 1 : 0; i < messages.Count; i++)
        {
            var message = messages[i];
            if (message.Role == ChatMessage.UserRole)
            {
                yield return "USER: " + message.Content;
                yield return " ";
            }
            else
            {
                yield return "ASSISTANT: " + message.Content;
                yield return EndOfTurn;
            }
        }
        yield return "ASSISTANT:";
    }

    private static void Validate(IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0)
        {
            throw new ArgumentException("A Vicuna prompt needs at least one user message.", nameof(messages));
        }
        int first = messages[0].Role == ChatMessage.SystemRole ? 1 : 0;
        for (int i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw new ArgumentException($"Message {i} is null.", nameof(messages));
            string expected = i < first ? ChatMessage.SystemRole
                : (i - first) % 2 == 0 ? ChatMessage.UserRole : ChatMessage.AssistantRole;
            if (message.Role != expected)
            {
                throw new ArgumentException(
                    $"Message {i} has role '{message.Role}' but '{expected}' was expected: a Vicuna prompt is an optional " +
                    "system message first, then user and assistant messages alternating, starting with user.", nameof(messages));
            }
            ArgumentNullException.ThrowIfNull(message.Content, $"{nameof(messages)}[{i}].Content");
        }
        if (messages[^1].Role != ChatMessage.UserRole)
        {
            throw new ArgumentException(
                $"The last message has role '{messages[^1].Role}' but must be '{ChatMessage.UserRole}' so the assistant can answer it.",
                nameof(messages));
        }
    }
}

using VicunaBatch.Inference.Text;

namespace VicunaBatch.Inference.Tests.Text;

public sealed class VicunaChatTemplateTests
{
    private static readonly Lazy<TextTokenizer> Llama = new(() => TextTokenizer.Load(SentencePieceOracle.LlamaTokenizerPath));

    private static readonly ChatMessage[] OneTurn = [new(ChatMessage.UserRole, "Hi")];

    private static readonly ChatMessage[] TwoTurnsWithSystem =
    [
        new(ChatMessage.SystemRole, "Be brief."),
        new(ChatMessage.UserRole, "Hi"),
        new(ChatMessage.AssistantRole, "Hello!"),
        new(ChatMessage.UserRole, "2+2?"),
    ];

    [Fact]
    public void FormatPrompt_oneTurn_usesDefaultSystemPrompt()
    {
        Assert.Equal(
            "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, " +
            "detailed, and polite answers to the user's questions. USER: Hi ASSISTANT:",
            VicunaChatTemplate.FormatPrompt(OneTurn));
    }

    [Fact]
    public void FormatPrompt_twoTurnsWithSystem_matchesFastChatGetPrompt()
    {
        Assert.Equal("Be brief. USER: Hi ASSISTANT: Hello!</s>USER: 2+2? ASSISTANT:", VicunaChatTemplate.FormatPrompt(TwoTurnsWithSystem));
    }

    [Fact]
    public void EncodePrompt_oneTurn_returnsBosAndSentencePieceIds()
    {
        // [1] + sp.encode(prompt) from python sentencepiece.
        int[] expected =
        [
            1, 319, 13563, 1546, 263, 12758, 1404, 322, 385, 23116, 21082, 20255, 29889, 450, 20255, 4076, 8444, 29892,
            13173, 29892, 322, 1248, 568, 6089, 304, 278, 1404, 29915, 29879, 5155, 29889, 3148, 1001, 29901, 6324, 319,
            1799, 9047, 13566, 29901,
        ];

        Assert.Equal(expected, VicunaChatTemplate.EncodePrompt(Llama.Value, OneTurn));
    }

    [Fact]
    public void EncodePrompt_twoTurns_endsAssistantTurnWithEosId()
    {
        // [1] + sp.encode("Be brief. USER: Hi ASSISTANT: Hello!") + [2] + sp.encode("USER: 2+2? ASSISTANT:")
        int[] expected =
        [
            1, 1522, 11473, 29889, 3148, 1001, 29901, 6324, 319, 1799, 9047, 13566, 29901, 15043, 29991, 2, 3148, 1001,
            29901, 29871, 29906, 29974, 29906, 29973, 319, 1799, 9047, 13566, 29901,
        ];

        Assert.Equal(expected, VicunaChatTemplate.EncodePrompt(Llama.Value, TwoTurnsWithSystem));
    }

    [Fact]
    public void EncodeCompletion_text_returnsBosThenIds()
    {
        Assert.Equal([1, 15043, 3186], PromptEncoder.EncodeCompletion(Llama.Value, "Hello world"));
    }

    public static TheoryData<string[], string> InvalidRoleOrders => new()
    {
        { [], "A Vicuna prompt needs at least one user message. (Parameter 'messages')" },
        { ["assistant", "user"], "Message 0 has role 'assistant' but 'user' was expected: a Vicuna prompt is an optional system message first, then user and assistant messages alternating, starting with user. (Parameter 'messages')" },
        { ["user", "system", "user"], "Message 1 has role 'system' but 'assistant' was expected: a Vicuna prompt is an optional system message first, then user and assistant messages alternating, starting with user. (Parameter 'messages')" },
        { ["user", "user"], "Message 1 has role 'user' but 'assistant' was expected: a Vicuna prompt is an optional system message first, then user and assistant messages alternating, starting with user. (Parameter 'messages')" },
        { ["system", "user", "assistant"], "The last message has role 'assistant' but must be 'user' so the assistant can answer it. (Parameter 'messages')" },
        { ["system"], "The last message has role 'system' but must be 'user' so the assistant can answer it. (Parameter 'messages')" },
        { ["User"], "Message 0 has role 'User' but 'user' was expected: a Vicuna prompt is an optional system message first, then user and assistant messages alternating, starting with user. (Parameter 'messages')" },
    };

    [Theory]
    [MemberData(nameof(InvalidRoleOrders))]
    public void EncodePrompt_invalidRoleOrder_throwsArgumentException(string[] roles, string message)
    {
        ChatMessage[] messages = [.. roles.Select(role => new ChatMessage(role, "x"))];

        Assert.Equal(message, Assert.Throws<ArgumentException>(() => VicunaChatTemplate.EncodePrompt(Llama.Value, messages)).Message);
        Assert.Equal(message, Assert.Throws<ArgumentException>(() => VicunaChatTemplate.FormatPrompt(messages)).Message);
    }
}

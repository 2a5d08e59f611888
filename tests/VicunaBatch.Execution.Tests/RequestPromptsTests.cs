using VicunaBatch.Core.Formats;
using VicunaBatch.Inference.Text;
using VicunaBatch.Testing;

namespace VicunaBatch.Execution.Tests;

/// <summary>The one prompt rule, on the committed tiny model's tokenizer.</summary>
public sealed class RequestPromptsTests
{
    private static readonly string TinyModel = Path.Combine(Checkout.Root, "models", "tiny");
    private static readonly TextTokenizer Tokenizer = TextTokenizer.Load(Path.Combine(TinyModel, "tokenizer.model"));

    [Fact]
    public void Encode_chat_request_is_the_vicuna_template_and_a_completion_is_bos_and_its_text()
    {
        var prompts = new RequestPrompts(Tokenizer, 64);
        var chat = Request(BatchEndpoint.ChatCompletions) with { Messages = [new ChatTurn("system", "Be brief."), new ChatTurn("user", "Hi there")] };
        var completion = Request(BatchEndpoint.Completions) with { Prompt = "Hi there" };

        Assert.Equal(VicunaChatTemplate.EncodePrompt(Tokenizer, [new ChatMessage("system", "Be brief."), new ChatMessage("user", "Hi there")]), prompts.Encode(chat));
        Assert.Equal([Tokenizer.BosId, .. Tokenizer.Encode("Hi there")], prompts.Encode(completion));
        Assert.Equal(prompts.Encode(chat).Count, prompts.CountPromptTokens(chat));
    }

    [Fact]
    public void Encode_chat_whose_roles_are_out_of_order_is_refused()
    {
        var chat = Request(BatchEndpoint.ChatCompletions) with { Messages = [new ChatTurn("assistant", "Hello")] };
        Assert.Throws<ArgumentException>(() => new RequestPrompts(Tokenizer, 64).Encode(chat));
    }

    [Fact]
    public void FitsContext_leaves_room_for_one_generated_token()
    {
        var prompts = new RequestPrompts(Tokenizer, 64);
        Assert.True(prompts.FitsContext(63));
        Assert.False(prompts.FitsContext(64));
    }

    [Fact]
    public void OfPackage_reads_the_context_and_tokenizer_without_the_weights()
    {
        var folder = Directory.CreateTempSubdirectory("vicuna-prompts-").FullName;
        try
        {
            foreach (var file in new[] { "genai_config.json", "tokenizer.model" }) File.Copy(Path.Combine(TinyModel, file), Path.Combine(folder, file));

            var prompts = RequestPrompts.OfPackage(folder);
            var shorter = RequestPrompts.OfPackage(folder, new Inference.Engine.EngineOptions { MaxSequenceLength = 128 });

            Assert.Equal(2048, prompts.ContextLength); // the tiny package's context_length
            Assert.Equal(128, shorter.ContextLength);
            Assert.Equal(Tokenizer.Encode("Hi there"), prompts.Tokenizer.Encode("Hi there"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static BatchRequest Request(BatchEndpoint endpoint) => new() { CustomId = "r1", LineNumber = 1, Endpoint = endpoint };
}

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
    public void TryEncode_a_prompt_far_over_the_context_is_refused_with_a_lower_bound_without_encoding_it()
    {
        var prompts = new RequestPrompts(Tokenizer, 64);
        var huge = Request(BatchEndpoint.Completions) with { Prompt = string.Concat(Enumerable.Repeat("once upon a time ", 200_000)) }; // 3.4 M chars
        var chat = Request(BatchEndpoint.ChatCompletions) with { Messages = [new ChatTurn("user", huge.Prompt!)] };

        var allocated = GC.GetAllocatedBytesForCurrentThread();
        Assert.False(prompts.TryEncode(huge, out var ids, out var atLeast));
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;

        Assert.Empty(ids);
        Assert.InRange(atLeast, 65, Tokenizer.Encode(huge.Prompt!).Count + 1);
        Assert.True(allocated < 64L << 20, $"{allocated} bytes allocated"); // one normalized copy, no ids for 3.4 M chars
        Assert.False(prompts.TryEncode(chat, out _, out _));
        Assert.Equal(atLeast, prompts.CountPromptTokens(huge));
        Assert.False(prompts.FitsContext(prompts.CountPromptTokens(huge)));
    }

    [Fact]
    public void TryEncode_a_prompt_that_fits_or_is_just_over_gives_its_exact_ids()
    {
        var prompts = new RequestPrompts(Tokenizer, 64);
        var fits = Request(BatchEndpoint.Completions) with { Prompt = "Hi there" };
        var justOver = Request(BatchEndpoint.Completions) with { Prompt = string.Concat(Enumerable.Repeat("once upon a time ", 15)) };

        Assert.True(prompts.TryEncode(fits, out var ids, out var count));
        Assert.Equal(prompts.Encode(fits), ids);
        Assert.Equal(ids.Count, count);
        Assert.True(prompts.TryEncode(justOver, out ids, out count)); // not certain from its length alone: encoded, exact
        Assert.Equal(prompts.Encode(justOver).Count, count);
        Assert.False(prompts.FitsContext(count));
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

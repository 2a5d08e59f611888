using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Results;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.Execution.Tests;

/// <summary>Requests with several prompts, several choices, token-id prompts and log probabilities, on the committed tiny model.</summary>
public sealed class EngineRequestExecutorTests : IAsyncDisposable
{
    private readonly LoadedModel _model = LoadedModel.Open(Path.Combine(Checkout.Root, "models", "tiny"), new EngineOptions { MaxBatchSize = 8, NumThreads = 1 });
    private readonly EngineHost _host;
    private readonly EngineRequestExecutor _executor;

    public EngineRequestExecutorTests()
    {
        _host = new EngineHost(_model.Engine, ownsEngine: false);
        _executor = new EngineRequestExecutor(_host, _model, _model.Name, new RequestDefaults { MaxTokens = 6 }, TimeProvider.System);
    }

    private static BatchRequest Completion(string prompt) =>
        new() { CustomId = "c", LineNumber = 1, Endpoint = BatchEndpoint.Completions, Prompt = prompt };

    private static BatchRequest Chat(params ChatTurn[] turns) =>
        new() { CustomId = "c", LineNumber = 1, Endpoint = BatchEndpoint.ChatCompletions, Messages = turns };

    private Task<RequestOutcome> Run(BatchRequest request) => _executor.ExecuteAsync(request);

    [Fact]
    public async Task ExecuteAsync_n_seeded_gives_n_choices_each_the_one_choice_of_its_seed_from_one_prefill()
    {
        var request = Completion("Once upon a time") with { N = 3, Temperature = 1.5, Seed = 40 };
        var prefillBefore = _model.Engine.Statistics.NumPrefillTokens;

        var outcome = await Run(request);
        var prefilled = _model.Engine.Statistics.NumPrefillTokens - prefillBefore;
        var alone = await Task.WhenAll(Enumerable.Range(0, 3).Select(j => Run(request with { N = 1, Seed = 40 + j })));

        Assert.True(outcome.Succeeded, outcome.ErrorMessage);
        Assert.Equal(alone.Select(a => a.Text), outcome.Choices!.Select(c => c.Text));
        Assert.Equal(alone[0].PromptTokens, outcome.PromptTokens); // the prompt counts once, as OpenAI counts it for n
        Assert.Equal(outcome.PromptTokens, prefilled);             // and is computed once: its KV is forked for choices 1 and 2
        Assert.Equal(alone.Sum(a => a.CompletionTokens), outcome.CompletionTokens);
        Assert.True(outcome.Choices!.Select(c => c.Text).Distinct().Count() > 1, "seeds 40, 41, 42 drew the same text three times");
    }

    [Fact]
    public async Task ExecuteAsync_n_greedy_runs_one_prefill_for_all_its_identical_choices()
    {
        var alone = await Run(Completion("Once upon a time") with { Temperature = 0 });
        var prefillBefore = _model.Engine.Statistics.NumPrefillTokens;

        var outcome = await Run(Completion("Once upon a time") with { N = 3, Temperature = 0 });

        Assert.Equal(alone.PromptTokens, _model.Engine.Statistics.NumPrefillTokens - prefillBefore);
        Assert.Equal([alone.Text, alone.Text, alone.Text], outcome.Choices!.Select(c => c.Text));
        Assert.Equal(3 * alone.CompletionTokens, outcome.CompletionTokens); // billed per choice, as OpenAI bills n
    }

    [Fact]
    public async Task ExecuteAsync_several_prompts_index_choices_across_prompts()
    {
        var request = Completion("Once upon a time") with { MorePrompts = [new CompletionPrompt("The dog", null)], N = 2 };

        var outcome = await Run(request);
        var first = await Run(Completion("Once upon a time"));
        var second = await Run(Completion("The dog"));

        Assert.Equal([first.Text, first.Text, second.Text, second.Text], outcome.Choices!.Select(c => c.Text));
        Assert.Equal(first.PromptTokens + second.PromptTokens, outcome.PromptTokens);
    }

    [Fact]
    public async Task ExecuteAsync_token_id_prompt_runs_as_given_and_an_id_outside_the_vocabulary_fails_the_request()
    {
        var prompts = RequestPrompts.Of(_model)!;
        var ids = prompts.Encode(Completion("Once upon a time"));

        var byIds = await Run(Completion("x") with { Prompt = null, PromptIds = ids });
        var byText = await Run(Completion("Once upon a time"));
        var outside = await Run(Completion("x") with { Prompt = null, PromptIds = [1, prompts.VocabSize] });

        Assert.Equal(byText.Text, byIds.Text);
        Assert.Equal(RequestErrorCode.InvalidRequest, outside.ErrorCode);
        Assert.Contains("outside the model's vocabulary", outside.ErrorMessage);
    }

    [Fact]
    public async Task ExecuteAsync_developer_message_answers_as_a_system_message()
    {
        var developer = await Run(Chat(new ChatTurn("developer", "Be brief."), new ChatTurn("user", "Hi")));
        var system = await Run(Chat(new ChatTurn("system", "Be brief."), new ChatTurn("user", "Hi")));

        Assert.True(developer.Succeeded, developer.ErrorMessage);
        Assert.Equal((system.Text, system.PromptTokens), (developer.Text, developer.PromptTokens));
    }

    [Fact]
    public async Task ExecuteAsync_logprobs_give_one_entry_per_token_whose_texts_make_the_choice()
    {
        var outcome = await Run(Chat(new ChatTurn("user", "Hi")) with { Logprobs = 2 });

        var choice = Assert.Single(outcome.Choices!);
        var logprobs = choice.Logprobs!;
        Assert.Equal(outcome.CompletionTokens, logprobs.Count);
        Assert.All(logprobs, t => Assert.Equal(2, t.Top.Count));
        Assert.All(logprobs, t => Assert.True(t.Logprob <= 0 && t.Top[0].Logprob >= t.Top[1].Logprob));
        Assert.Equal(choice.Text.TrimStart(' '), string.Concat(logprobs.Select(t => t.Token)).TrimStart(' '));
        Assert.Equal(logprobs.Select(t => t.TextOffset).Order(), logprobs.Select(t => t.TextOffset));
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        _model.Dispose();
    }
}

using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Grammar;
using EngineFinish = VicunaBatch.Inference.Engine.FinishReason;

namespace VicunaBatch.Execution;

/// <summary>
/// Runs batch requests on one engine, their prompts encoded by <see cref="RequestPrompts"/>; a prompt it refuses (roles
/// out of order, a token id outside the vocabulary) is an <c>invalid_request</c> outcome; a <c>response_format</c> other
/// than text runs as the engine's JSON grammar (<see cref="ResponseGrammars"/>). Every call is in flight in the engine
/// at once — requests of many shards share its batch.
/// </summary>
public sealed class EngineRequestExecutor : IRequestExecutor
{
    private readonly EngineHost _host;
    private readonly RequestPrompts? _prompts;
    private readonly string _noTokenizer;
    private readonly RequestDefaults _defaults;
    private readonly TimeProvider _time;
    private long _numSucceeded, _numFailed, _numOutputTokens;

    /// <param name="modelName">The name outputs give the model: the one the deployment serves it by.</param>
    public EngineRequestExecutor(EngineHost host, LoadedModel model, string modelName, RequestDefaults defaults, TimeProvider time)
    {
        defaults.Validate();
        _host = host;
        _prompts = RequestPrompts.Of(model);
        _noTokenizer = model.Package.NoTokenizer;
        ModelName = modelName;
        _defaults = defaults;
        _time = time;
    }

    public string ModelName { get; }

    public long NumSucceeded => Interlocked.Read(ref _numSucceeded);

    public long NumFailed => Interlocked.Read(ref _numFailed);

    public long NumOutputTokens => Interlocked.Read(ref _numOutputTokens);

    /// <summary>Each finished generation (any outcome), on the caller's thread, before its outcome is returned.</summary>
    public event Action<GenerationResult>? Generated;

    public async Task<RequestOutcome> ExecuteAsync(BatchRequest request, CancellationToken cancellationToken = default)
    {
        if (_prompts is null)
        {
            return Count(RequestOutcome.Failure(request, RequestErrorCode.ExecutionFailed,
                $"model '{ModelName}' {_noTokenizer}, so text prompts cannot run", _time.GetUtcNow()));
        }
        if (GrammarOf(request, out var grammar) is { } unmatched) return Count(unmatched);
        var prompts = new List<IReadOnlyList<int>>();
        foreach (var one in OnePromptEach(request))
        {
            if (Encode(one, out var ids) is { } refused) return Count(refused);
            prompts.Add(ids);
        }
        // greedy choices of one prompt are all the same: one generation (one prefill, one decode) answers all n;
        // sampled ones share the prompt's prefill in the engine (GenerationRequest.NumChoices) and decode apart
        var greedy = Sampling(request).IsGreedy;
        var generations = prompts.Select(ids => _host.GenerateChoicesAsync(Generation(request, ids, greedy ? 1 : request.N, grammar), cancellationToken));
        var generated = (await Task.WhenAll(generations)).SelectMany(choices => choices).ToArray();
        cancellationToken.ThrowIfCancellationRequested();
        foreach (var result in generated) Generated?.Invoke(result);
        var results = greedy ? generated.SelectMany(r => Enumerable.Repeat(r, request.N)).ToArray() : generated;
        return Count(ToOutcome(request, results));
    }

    /// <summary>A completions request once per prompt (choices are indexed across them); a chat request as it is.</summary>
    private static IEnumerable<BatchRequest> OnePromptEach(BatchRequest request) =>
        request.Endpoint == BatchEndpoint.Completions ? request.CompletionPrompts().Select(request.WithPrompt) : [request];

    /// <summary>The prompt's ids, or the failed outcome of a prompt that cannot run.</summary>
    private RequestOutcome? Encode(BatchRequest request, out IReadOnlyList<int> ids)
    {
        try
        {
            if (_prompts!.TryEncode(request, out ids, out var atLeast)) return null;
            return RequestOutcome.Failure(request, RequestErrorCode.ContextLengthExceeded,
                $"the prompt has at least {atLeast} tokens; the context holds {_prompts.ContextLength} (prompt + at least one generated token)", _time.GetUtcNow());
        }
        catch (ArgumentException e)
        {
            ids = [];
            return RequestOutcome.Failure(request, RequestErrorCode.InvalidRequest, e.Message, _time.GetUtcNow());
        }
    }

    /// <summary>The grammar of the request's <c>response_format</c> (null for text), or the failed outcome of one that cannot be matched.</summary>
    private RequestOutcome? GrammarOf(BatchRequest request, out JsonGrammar? grammar)
    {
        try
        {
            grammar = ResponseGrammars.Of(request.ResponseFormat);
            return null;
        }
        catch (ArgumentException e)
        {
            grammar = null;
            return RequestOutcome.Failure(request, RequestErrorCode.InvalidRequest, e.Message, _time.GetUtcNow());
        }
    }

    /// <summary>A prompt's generation of <paramref name="numChoices"/> choices.</summary>
    private GenerationRequest Generation(BatchRequest request, IReadOnlyList<int> promptIds, int numChoices, JsonGrammar? grammar) =>
        new(request.CustomId, promptIds, request.MaxTokens ?? _defaults.MaxTokens, Sampling(request), request.Stop,
            Grammar: grammar, TopLogprobs: request.Logprobs, NumChoices: numChoices);

    /// <summary>The request's sampling; a seeded request's choices draw with seeds seed, seed + 1, … (<see cref="SamplingParams.ForChoice"/>).</summary>
    private SamplingParams Sampling(BatchRequest request) =>
        new((float)(request.Temperature ?? _defaults.Temperature), 0, (float)(request.TopP ?? _defaults.TopP), request.Seed is { } seed ? unchecked((ulong)seed) : null);

    /// <summary>Every choice's outcome, or the first failed generation's. Usage counts each prompt once, as OpenAI does for n.</summary>
    private RequestOutcome ToOutcome(BatchRequest request, GenerationResult[] results)
    {
        var now = _time.GetUtcNow();
        if (results.FirstOrDefault(r => r.FinishReason is not (EngineFinish.Stop or EngineFinish.Length)) is { } failed)
        {
            return failed.FinishReason == EngineFinish.Cancelled
                ? throw new OperationCanceledException($"request {request.CustomId} was cancelled")
                : RequestOutcome.Failure(request, ErrorCode(failed), failed.Error ?? "generation failed", now);
        }
        var choices = results.Select(r => Choice(request, r)).ToList();
        var promptTokens = results.Where((_, i) => i % request.N == 0).Sum(r => r.PromptTokens);
        return RequestOutcome.Success(request, ModelName, choices[0].Text, choices[0].FinishReason,
            promptTokens, results.Sum(r => r.CompletionTokens), now) with
        {
            Choices = choices.Count > 1 || request.Logprobs is not null ? choices : null,
        };
    }

    private OutcomeChoice Choice(BatchRequest request, GenerationResult result) => new(
        result.Text ?? string.Empty,
        result.FinishReason == EngineFinish.Stop ? Core.Results.FinishReason.Stop : Core.Results.FinishReason.Length,
        request.Logprobs is null ? null : ChoiceLogprobs.Of(_prompts!.Tokenizer, result));

    private static RequestErrorCode ErrorCode(GenerationResult result) => result.ErrorKind switch
    {
        GenerationErrorKind.PromptTooLong => RequestErrorCode.ContextLengthExceeded,
        GenerationErrorKind.InvalidRequest => RequestErrorCode.InvalidRequest,
        _ => RequestErrorCode.ExecutionFailed,
    };

    private RequestOutcome Count(RequestOutcome outcome)
    {
        if (outcome.Succeeded)
        {
            Interlocked.Increment(ref _numSucceeded);
            Interlocked.Add(ref _numOutputTokens, outcome.CompletionTokens);
        }
        else
        {
            Interlocked.Increment(ref _numFailed);
        }
        return outcome;
    }
}

using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Grammar;
using EngineFinish = VicunaBatch.Inference.Engine.FinishReason;

namespace VicunaBatch.Execution;

/// <summary>
/// Runs batch requests on one engine: chat requests through the model's chat template (Vicuna v1.1), completion
/// prompts as BOS + text; a <c>response_format</c> other than text as the engine's JSON grammar (<see cref="ResponseGrammars"/>). Every call is in flight in the engine at once — requests of many shards share its batch.
/// </summary>
public sealed class EngineRequestExecutor : IRequestExecutor
{
    private readonly EngineHost _host;
    private readonly RequestPrompts? _prompts;
    private readonly RequestDefaults _defaults;
    private readonly TimeProvider _time;
    private long _numSucceeded, _numFailed, _numOutputTokens;

    /// <param name="modelName">The name outputs give the model: the one the deployment serves it by.</param>
    public EngineRequestExecutor(EngineHost host, LoadedModel model, string modelName, RequestDefaults defaults, TimeProvider time)
    {
        defaults.Validate();
        _host = host;
        _prompts = RequestPrompts.Of(model);
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
                $"model '{ModelName}' has no tokenizer.model, so text prompts cannot run", _time.GetUtcNow()));
        }
        IReadOnlyList<int> promptIds;
        JsonGrammar? grammar;
        try
        {
            grammar = ResponseGrammars.Of(request.ResponseFormat);
            if (!_prompts.TryEncode(request, out promptIds, out var atLeast))
            {
                return Count(RequestOutcome.Failure(request, RequestErrorCode.ContextLengthExceeded,
                    $"the prompt has at least {atLeast} tokens; the context holds {_prompts.ContextLength} (prompt + at least one generated token)", _time.GetUtcNow()));
            }
        }
        catch (ArgumentException e)
        {
            return Count(RequestOutcome.Failure(request, RequestErrorCode.InvalidRequest, e.Message, _time.GetUtcNow()));
        }
        var sampling = new SamplingParams(
            (float)(request.Temperature ?? _defaults.Temperature), 0, (float)(request.TopP ?? _defaults.TopP), (ulong?)request.Seed);
        var generation = new GenerationRequest(request.CustomId, promptIds, request.MaxTokens ?? _defaults.MaxTokens, sampling, request.Stop, Grammar: grammar);
        var result = await _host.GenerateAsync(generation, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        Generated?.Invoke(result);
        return Count(ToOutcome(request, result));
    }

    private RequestOutcome ToOutcome(BatchRequest request, GenerationResult result)
    {
        var now = _time.GetUtcNow();
        return result.FinishReason switch
        {
            EngineFinish.Stop or EngineFinish.Length => RequestOutcome.Success(
                request, ModelName, result.Text ?? string.Empty,
                result.FinishReason == EngineFinish.Stop ? Core.Results.FinishReason.Stop : Core.Results.FinishReason.Length,
                result.PromptTokens, result.CompletionTokens, now),
            EngineFinish.Cancelled => throw new OperationCanceledException($"request {request.CustomId} was cancelled"),
            _ => RequestOutcome.Failure(request, ErrorCode(result), result.Error ?? "generation failed", now),
        };
    }

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

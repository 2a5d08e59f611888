using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;
using VicunaBatch.Inference.Text;

namespace VicunaBatch.Execution;

/// <summary>
/// The one rule from a batch request to the engine's prompt: a chat request through the Vicuna v1.1 template, a
/// completion as BOS + its text; its token count; and whether it fits the context the engine gives a request. The
/// executor encodes with it, <c>validate</c> counts with it, pipelines split documents with its tokenizer.
/// </summary>
public sealed class RequestPrompts(TextTokenizer tokenizer, int contextLength) : IPromptTokenCounter
{
    public TextTokenizer Tokenizer { get; } = tokenizer;

    /// <summary>Longest prompt + output a request may have, in tokens: the engine's maximum sequence length.</summary>
    public int ContextLength { get; } = contextLength;

    /// <summary>The prompts of <paramref name="model"/>'s engine, or null when its package has no tokenizer.</summary>
    public static RequestPrompts? Of(LoadedModel model) =>
        model.Tokenizer is { } tokenizer ? new RequestPrompts(tokenizer, model.Engine.MaxSequenceLength) : null;

    /// <summary>
    /// The prompts of a package folder from its <c>genai_config.json</c> and <c>tokenizer.model</c> alone (a host that
    /// only counts or splits text; the weights need not be there), with the context an engine with
    /// <paramref name="engine"/> (default: the package's own context) would give.
    /// </summary>
    public static RequestPrompts OfPackage(string packageDirectory, EngineOptions? engine = null)
    {
        var configPath = Path.Combine(packageDirectory, ModelPackage.ConfigFileName);
        var config = GenAiConfig.Parse(File.ReadAllText(configPath), configPath);
        var tokenizer = TextTokenizer.Load(Path.Combine(packageDirectory, ModelPackage.TokenizerFileName));
        return new RequestPrompts(tokenizer, (engine ?? new EngineOptions()).ContextLengthFor(config.Model.ContextLength));
    }

    /// <summary>The prompt's token ids. <see cref="ArgumentException"/> for messages the template refuses (roles out of order).</summary>
    public IReadOnlyList<int> Encode(BatchRequest request) => request.Endpoint == BatchEndpoint.ChatCompletions
        ? VicunaChatTemplate.EncodePrompt(Tokenizer, request.Messages.Select(m => new ChatMessage(m.Role, m.Content)).ToList())
        : PromptEncoder.EncodeCompletion(Tokenizer, request.Prompt ?? string.Empty);

    /// <summary>
    /// The prompt's ids, unless its text alone is certain not to fit the context: a text of more chars than the context
    /// could hold at the tokenizer's longest piece is bounded from below first (<see cref="TextTokenizer.MinTokenCount"/>),
    /// so BPE never runs over a prompt far too long, and what encoding costs stays bounded whatever a line holds.
    /// False (no ids) when the bound already exceeds the context; <paramref name="numTokens"/> is then that lower bound,
    /// else the exact count.
    /// </summary>
    public bool TryEncode(BatchRequest request, out IReadOnlyList<int> ids, out int numTokens)
    {
        var texts = request.Endpoint == BatchEndpoint.ChatCompletions ? request.Messages.Select(m => m.Content) : [request.Prompt ?? string.Empty];
        if (texts.Sum(t => (long)t.Length) > (long)ContextLength * Tokenizer.MaxPieceChars)
        {
            var atLeast = 1 + texts.Sum(Tokenizer.MinTokenCount); // BOS, then the texts' ids; a template only adds more
            if (!FitsContext(atLeast))
            {
                (ids, numTokens) = ([], atLeast);
                return false;
            }
        }
        ids = Encode(request);
        numTokens = ids.Count;
        return true;
    }

    /// <summary>The prompt's tokens, or a lower bound already over the context for a prompt certain not to fit (<see cref="TryEncode"/>).</summary>
    public int CountPromptTokens(BatchRequest request)
    {
        TryEncode(request, out _, out var numTokens);
        return numTokens;
    }

    public bool FitsContext(int numPromptTokens) => InferenceEngine.FitsContext(numPromptTokens, ContextLength);
}

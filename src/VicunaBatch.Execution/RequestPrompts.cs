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

    public int CountPromptTokens(BatchRequest request) => Encode(request).Count;

    public bool FitsContext(int numPromptTokens) => InferenceEngine.FitsContext(numPromptTokens, ContextLength);
}

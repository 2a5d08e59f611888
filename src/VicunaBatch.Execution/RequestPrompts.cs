using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;
using VicunaBatch.Inference.Text;

namespace VicunaBatch.Execution;

/// <summary>
/// The one rule from a batch request to the engine's prompt: a chat request through the Vicuna v1.1 template (a
/// <c>developer</c> message as a <c>system</c> one), a completion as BOS + its text, or its token ids as given; its
/// token count; and whether it fits the context the engine gives a request. The executor encodes with it,
/// <c>validate</c> counts with it, pipelines split documents with its tokenizer.
/// </summary>
/// <param name="vocabSize">Ids a token-id prompt may hold: [0, vocabSize). Default: the tokenizer's pieces.</param>
public sealed class RequestPrompts(TextTokenizer tokenizer, int contextLength, int? vocabSize = null) : IPromptTokenCounter
{
    public TextTokenizer Tokenizer { get; } = tokenizer;

    /// <summary>Longest prompt + output a request may have, in tokens: the engine's maximum sequence length.</summary>
    public int ContextLength { get; } = contextLength;

    /// <summary>The model's vocabulary size: a token-id prompt's ids are below it.</summary>
    public int VocabSize { get; } = vocabSize ?? tokenizer.VocabSize;

    /// <summary>The prompts of <paramref name="model"/>'s engine, or null when its package has no tokenizer.</summary>
    public static RequestPrompts? Of(LoadedModel model) => model.Tokenizer is { } tokenizer
        ? new RequestPrompts(tokenizer, model.Engine.MaxSequenceLength, model.Package.Config.Model.VocabSize)
        : null;

    /// <summary>
    /// The prompts of a package folder from its <c>genai_config.json</c> and <c>tokenizer.model</c> alone (a host that
    /// only counts or splits text; the weights need not be there), with the context an engine with
    /// <paramref name="engine"/> (default: the package's own context) would give.
    /// </summary>
    public static RequestPrompts OfPackage(string packageDirectory, EngineOptions? engine = null)
    {
        using var files = PackageFiles.InDirectory(packageDirectory);
        return OfPackage(files, engine);
    }

    /// <summary>The same from a package's files wherever they are (a folder, or the two files read from blob storage into memory).</summary>
    public static RequestPrompts OfPackage(PackageFiles files, EngineOptions? engine = null)
    {
        var config = ModelPackage.ReadConfig(files);
        if (!files.Contains(ModelPackage.TokenizerFileName))
            throw new ModelPackageException($"{files.Location} has no {ModelPackage.TokenizerFileName}");
        var tokenizer = TextTokenizer.Parse(files.ReadAllBytes(ModelPackage.TokenizerFileName), files.Describe(ModelPackage.TokenizerFileName));
        return new RequestPrompts(tokenizer, (engine ?? new EngineOptions()).ContextLengthFor(config.Model.ContextLength), config.Model.VocabSize);
    }

    /// <summary>
    /// The prompt's token ids. <see cref="ArgumentException"/> for messages the template refuses (roles out of order) and
    /// for a token-id prompt with an id outside the model's vocabulary. Token ids are the engine's prompt as given, no
    /// BOS added: a client that tokenizes with the model's tokenizer already has its BOS, as <c>generate --prompt-ids</c> does.
    /// </summary>
    public IReadOnlyList<int> Encode(BatchRequest request) => request switch
    {
        { Endpoint: BatchEndpoint.ChatCompletions } => VicunaChatTemplate.EncodePrompt(Tokenizer, request.Messages.Select(ToTemplate).ToList()),
        { PromptIds: { } ids } => InVocabulary(ids),
        _ => PromptEncoder.EncodeCompletion(Tokenizer, request.Prompt ?? string.Empty),
    };

    /// <summary>A chat turn as the template takes it: OpenAI maps <c>developer</c> to <c>system</c> for models without it.</summary>
    private static ChatMessage ToTemplate(ChatTurn turn) =>
        new(turn.Role == ChatTurn.DeveloperRole ? ChatMessage.SystemRole : turn.Role, turn.Content);

    private IReadOnlyList<int> InVocabulary(IReadOnlyList<int> ids)
    {
        for (int i = 0; i < ids.Count; i++)
        {
            if (ids[i] < 0 || ids[i] >= VocabSize)
                throw new ArgumentException($"prompt[{i}] is token id {ids[i]}, outside the model's vocabulary [0, {VocabSize})");
        }
        return ids;
    }

    /// <summary>
    /// The prompt's ids, unless its text alone is certain not to fit the context: a text of more chars than the context
    /// could hold at the tokenizer's longest piece is bounded from below first (<see cref="TextTokenizer.MinTokenCount"/>),
    /// so BPE never runs over a prompt far too long, and what encoding costs stays bounded whatever a line holds.
    /// False (no ids) when the bound already exceeds the context; <paramref name="numTokens"/> is then that lower bound,
    /// else the exact count.
    /// </summary>
    public bool TryEncode(BatchRequest request, out IReadOnlyList<int> ids, out int numTokens)
    {
        if (request.PromptIds is not null)
        {
            ids = Encode(request);
            numTokens = ids.Count;
            return true;
        }
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

    /// <summary>
    /// The prompt's tokens, or a lower bound already over the context for a prompt certain not to fit (<see cref="TryEncode"/>);
    /// of a completions request with several prompts, its longest prompt's, the one that decides whether all fit.
    /// </summary>
    public int CountPromptTokens(BatchRequest request) => request.MorePrompts.Count > 0
        ? request.CompletionPrompts().Max(prompt => CountPromptTokens(request.WithPrompt(prompt)))
        : CountOnePrompt(request);

    private int CountOnePrompt(BatchRequest request)
    {
        if (request.PromptIds is { } ids) return ids.Count; // counted as given; an id outside the vocabulary fails at execution
        TryEncode(request, out _, out var numTokens);
        return numTokens;
    }

    public bool FitsContext(int numPromptTokens) => InferenceEngine.FitsContext(numPromptTokens, ContextLength);
}

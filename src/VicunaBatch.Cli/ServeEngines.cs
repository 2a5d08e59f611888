using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Execution;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Cli;

/// <summary>A model serve loaded, once per engine (one per GPU), with the name it serves it by.</summary>
internal sealed record ServedEngine(string Name, IReadOnlyList<LoadedModel> Models)
{
    /// <summary>Its first engine's: the package, tokenizer and limits all its engines share.</summary>
    public LoadedModel Model => Models[0];
}

/// <summary>
/// The engines of serve's models, one a model on each of <c>--gpus</c> (the CPU: one), loaded in order as the host starts
/// (before it listens); the first is the default. They share the machine: each fits its KV cache into the memory the ones before it left, and a model that
/// cannot start (it does not fit, or its package is bad) stops serve with a line that names it, before serve listens.
/// </summary>
internal sealed class ServeEngines : IDisposable
{
    private readonly List<ServedEngine> _engines = [];

    public ServeEngines(IReadOnlyList<ModelChoice> models, IReadOnlyList<EngineOptions> options)
    {
        try
        {
            foreach (var choice in models) _engines.Add(new ServedEngine(choice.Name, Open(choice, options)));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public IReadOnlyList<ServedEngine> All => _engines;

    public ServedEngine Default => _engines[0];

    /// <summary>Counts a line's prompt with the tokenizer of the model it names (the default's for one that names none).</summary>
    public IPromptTokenCounter PromptCounter() => new RoutedCounter(this);

    private IReadOnlyList<LoadedModel> Open(ModelChoice choice, IReadOnlyList<EngineOptions> options)
    {
        try
        {
            return ModelOptions.OpenShowingWait(choice.Path, options);
        }
        catch (Exception e) when (_engines.Count > 0 && e is InferenceException or Inference.Package.ModelPackageException
            or FileNotFoundException or DirectoryNotFoundException or InvalidDataException)
        {
            throw new UsageException($"model '{choice.Name}' ({choice.Path}) could not start beside {string.Join(", ", _engines.Select(m => $"'{m.Name}'"))}: {e.Message}; " +
                "where it is memory: serve fewer models, or give them a shorter --max-sequence-length or a smaller --max-batch-size");
        }
    }

    public void Dispose()
    {
        foreach (var model in _engines.SelectMany(e => e.Models)) model.Dispose();
        _engines.Clear();
    }

    private sealed class RoutedCounter(ServeEngines engines) : IPromptTokenCounter
    {
        private readonly Dictionary<string, RequestPrompts> _prompts = engines.All
            .Select(e => (e.Name, Prompts: RequestPrompts.Of(e.Model)))
            .Where(p => p.Prompts is not null).ToDictionary(p => p.Name, p => p.Prompts!, StringComparer.Ordinal);

        private RequestPrompts Default => _prompts.TryGetValue(engines.Default.Name, out var prompts) ? prompts
            : throw new UsageException($"model '{engines.Default.Name}' {engines.Default.Model.Package.NoTokenizer}");

        public int ContextLength => Default.ContextLength;

        public int CountPromptTokens(BatchRequest request) =>
            (request.Model is { } name && _prompts.TryGetValue(name, out var prompts) ? prompts : Default).CountPromptTokens(request);

        public bool FitsContext(int numPromptTokens) => Default.FitsContext(numPromptTokens);
    }
}

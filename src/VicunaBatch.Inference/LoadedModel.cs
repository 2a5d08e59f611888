using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Onnx;
using VicunaBatch.Inference.Package;
using VicunaBatch.Inference.Text;

namespace VicunaBatch.Inference;

/// <summary>
/// A model package opened for generation: its engine (ONNX Runtime on the CPU, or on CUDA with <see cref="EngineOptions.Device"/>;
/// a paged package on CUDA only) and its tokenizer, if it has one.
/// </summary>
public sealed class LoadedModel : IDisposable
{
    private LoadedModel(ModelPackage package, TextTokenizer? tokenizer, InferenceEngine engine)
    {
        Package = package;
        Tokenizer = tokenizer;
        Engine = engine;
    }

    public ModelPackage Package { get; }

    public TextTokenizer? Tokenizer { get; }

    public InferenceEngine Engine { get; }

    public string Name => Package.Name;

    public static LoadedModel Open(string packageDirectory, EngineOptions options)
    {
        options.Validate();
        var package = ModelPackage.Load(packageDirectory);
        var tokenizer = package.TokenizerPath is { } path ? TextTokenizer.Load(path) : null;
        if (tokenizer is not null && tokenizer.VocabSize > package.Config.Model.VocabSize)
        {
            throw new ModelPackageException(
                $"{package.TokenizerPath}: the tokenizer has {tokenizer.VocabSize} pieces but the model's vocabulary is {package.Config.Model.VocabSize}");
        }
        var maxLength = options.ContextLengthFor(package.Config.Model.ContextLength);
        var (runner, kvCache) = EngineVariant.Of(package).Open(package, options, maxLength);
        var eos = package.Config.Model.EosTokenIds;
        var vocabulary = new ModelVocabulary(eos, tokenizer is null ? null : tokenizer.Decode, tokenizer is null ? null : TokenTexts.Of(tokenizer));
        var engine = new InferenceEngine(runner, kvCache, options, vocabulary);
        return new LoadedModel(package, tokenizer, engine) { SlotsNote = NoteOnSlots(options, engine) };
    }

    /// <summary>
    /// One line for the commands to show when fewer KV slots than asked fit in this machine's memory (the CPU: see
    /// <see cref="EngineOptions.MaxBatchSize"/>), else null: fewer requests run at once, and what would fit more.
    /// </summary>
    public string? SlotsNote { get; private init; }

    private static string? NoteOnSlots(EngineOptions options, InferenceEngine engine)
    {
        if (options.Device != ExecutionDevice.Cpu || engine.NumSlots >= options.MaxBatchSize) return null;
        var slotMiB = engine.KvCacheBytes / engine.NumSlots >> 20;
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{engine.NumSlots} of the {options.MaxBatchSize} KV slots asked fit in this machine's memory ({slotMiB} MiB each, for {engine.MaxSequenceLength} tokens): {engine.NumSlots} request{(engine.NumSlots == 1 ? "" : "s")} run at once; a shorter --max-sequence-length fits more");
    }

    public void Dispose() => Engine.Dispose();
}

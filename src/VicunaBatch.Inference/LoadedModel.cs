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

    /// <summary>The GPU its engine runs on (<see cref="EngineOptions.Gpu"/>); null on the CPU.</summary>
    public int? Gpu { get; private init; }

    /// <summary>
    /// The package once for each of <paramref name="engines"/> (one per GPU, <see cref="EngineOptions.OnGpu"/>), opened in
    /// parallel, each on a thread of its own, from one copy of <paramref name="files"/> (<see cref="PackageFiles.Share"/>:
    /// a package in memory is held once, whatever the number of engines). The models own the files together. When one
    /// cannot open, the others are disposed and its error is thrown.
    /// </summary>
    public static IReadOnlyList<LoadedModel> OpenEach(PackageFiles files, IReadOnlyList<EngineOptions> engines)
    {
        if (engines.Count == 0)
        {
            files.Dispose();
            throw new ArgumentException("no engine to open the package for", nameof(engines));
        }
        if (engines.Count == 1) return [Open(files, engines[0])];
        var shares = files.Share(engines.Count);
        var opening = engines.Select((options, i) => Task.Factory.StartNew(() => Open(shares[i], options),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        try
        {
            Task.WaitAll(opening);
        }
        catch (AggregateException)
        {
            foreach (var opened in opening.Where(t => t.IsCompletedSuccessfully)) opened.Result.Dispose();
            var failed = opening.First(t => t.IsFaulted).Exception!.InnerException!;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed);
        }
        return [.. opening.Select(t => t.Result)];
    }

    /// <summary>The package in the folder <paramref name="packageDirectory"/>; ONNX Runtime reads the weights from its files.</summary>
    public static LoadedModel Open(string packageDirectory, EngineOptions options)
    {
        options.Validate();
        return Open(PackageFiles.InDirectory(packageDirectory), options);
    }

    /// <summary>
    /// The package whose files are <paramref name="files"/> (a folder, or buffers in memory: ONNX Runtime then takes the
    /// weights from the buffers without copying them). The model owns the files from here: it disposes them after its
    /// session, and at once when opening fails.
    /// </summary>
    public static LoadedModel Open(PackageFiles files, EngineOptions options)
    {
        using var owned = new DisposeOnFailure();
        owned.Own(files);
        options.Validate();
        var package = ModelPackage.Open(files);
        var tokenizer = TokenizerOf(package);
        var maxLength = options.ContextLengthFor(package.Config.Model.ContextLength);
        var (runner, kvCache) = EngineVariant.Of(package).Open(package, options, maxLength);
        owned.Own(runner);
        var eos = package.Config.Model.EosTokenIds;
        var vocabulary = new ModelVocabulary(eos, tokenizer is null ? null : tokenizer.Decode, tokenizer is null ? null : TokenTexts.Of(tokenizer));
        var engine = new InferenceEngine(runner, kvCache, options, vocabulary, StepCost.Of(package, runner.KvElementBytes, runner.ActivationElementBytes));
        owned.Keep();
        return new LoadedModel(package, tokenizer, engine)
        {
            SlotsNote = NoteOnSlots(options, engine), Gpu = options.Device == ExecutionDevice.Cuda ? options.Gpu : null,
        };
    }

    /// <summary>The package's tokenizer, or null when it ships none; one with more pieces than the model's vocabulary is refused.</summary>
    public static TextTokenizer? TokenizerOf(ModelPackage package)
    {
        if (package.TokenizerLocation is not { } location) return null;
        var tokenizer = TextTokenizer.Parse(package.Files.ReadAllBytes(ModelPackage.TokenizerFileName), location);
        if (tokenizer.VocabSize > package.Config.Model.VocabSize)
        {
            throw new ModelPackageException(
                $"{location}: the tokenizer has {tokenizer.VocabSize} pieces but the model's vocabulary is {package.Config.Model.VocabSize}");
        }
        return tokenizer;
    }

    /// <summary>
    /// One line for the commands to show when fewer KV slots (or paged KV blocks) than asked fit in this machine's memory
    /// or the GPU's (see <see cref="EngineOptions.MaxBatchSize"/>, <see cref="EngineOptions.NumKvBlocks"/>), else null:
    /// fewer requests run at once, and what would fit more.
    /// </summary>
    public string? SlotsNote { get; private init; }

    /// <summary>The <see cref="SlotsNote"/>s of a model's engines (one per GPU), each said once.</summary>
    public static IEnumerable<string> SlotsNotes(IReadOnlyList<LoadedModel> models) => models.Select(m => m.SlotsNote).OfType<string>().Distinct();

    private static string? NoteOnSlots(EngineOptions options, InferenceEngine engine)
    {
        var memory = options.Device == ExecutionDevice.Cpu ? "this machine's memory" : "the GPU's memory";
        var kv = engine.KvUsage;
        if (kv.Unit == KvUnit.Block)
        {
            if (options.NumKvBlocks == 0 || kv.NumUnits >= options.NumKvBlocks) return null;
            return string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{kv.NumUnits} of the {options.NumKvBlocks} KV blocks asked fit in {memory} ({engine.KvCacheBytes / kv.NumUnits >> 20} MiB each, for {kv.UnitTokens} tokens)");
        }
        if (options.MaxBatchSize == 0 || engine.NumSlots >= options.MaxBatchSize) return null;
        var slotMiB = engine.KvCacheBytes / engine.NumSlots >> 20;
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{engine.NumSlots} of the {options.MaxBatchSize} KV slots asked fit in {memory} ({slotMiB} MiB each, for {engine.MaxSequenceLength} tokens): {engine.NumSlots} request{(engine.NumSlots == 1 ? "" : "s")} run at once; a shorter --max-sequence-length fits more");
    }

    public void Dispose()
    {
        Engine.Dispose();
        Package.Files.Dispose(); // after the session: ONNX Runtime reads weights in memory in place
    }
}

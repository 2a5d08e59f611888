using System.CommandLine;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Cli;

/// <summary>The options every command that runs the model shares: which package, and the engine's limits (defaults = <see cref="EngineOptions"/>).</summary>
internal sealed class ModelOptions
{
    private static readonly EngineOptions Defaults = new();

    public Option<DirectoryInfo?> Model { get; } = new("--model")
    {
        Description = $"Model package folder (genai_config.json, model.onnx, tokenizer.model). Default: the embedded tiny model ({DefaultModelPath}).",
    };

    /// <summary>The models a command that runs jobs serves, by name (<see cref="ModelChoice"/>).</summary>
    public Option<string[]> Served { get; } = new("--model")
    {
        HelpName = "[NAME=]DIR",
        Description = "A model package folder (genai_config.json, model.onnx, tokenizer.model) and the name lines' \"model\" and the outputs use for it; " +
            $"without NAME=, its folder's name. serve takes several (repeat it): each gets an engine of its own, and the first is the default of lines that name none. " +
            $"Default: the embedded tiny model ({DefaultModelPath}).",
    };

    public Option<int> MaxBatchSize { get; } = new("--max-batch-size")
    {
        Description = "KV slots: requests decoding at once. 0 with --device cuda: as many as fit in GPU memory. Paged packages: requests running at once (at most 256; 0 = the package's).",
        DefaultValueFactory = _ => Defaults.MaxBatchSize,
    };

    public Option<int> NumKvBlocks { get; } = new("--num-kv-blocks")
    {
        Description = "Paged packages (export.py --attention paged): KV blocks in the GPU pool (block size from the package); 0 = as many as fit.",
        DefaultValueFactory = _ => Defaults.NumKvBlocks,
    };

    public Option<int> MaxScheduledTokens { get; } = new("--max-scheduled-tokens")
    {
        Description = "Tokens (decodes + prompt chunks) per engine step.",
        DefaultValueFactory = _ => Defaults.MaxScheduledTokens,
    };

    public Option<int> MaxSequenceLength { get; } = new("--max-sequence-length")
    {
        Description = "Longest prompt + output per request; 0 = the model's context length.",
        DefaultValueFactory = _ => Defaults.MaxSequenceLength,
    };

    public Option<int> Threads { get; } = new("--threads")
    {
        Description = "ONNX Runtime threads; 0 = one per core.",
        DefaultValueFactory = _ => Defaults.NumThreads,
    };

    public Option<ExecutionDevice> Device { get; } = Choice("--device",
        "cpu, or cuda: ONNX Runtime's CUDA provider on GPU 0 with the KV cache on the device (needs ONNX Runtime GPU's native libraries and a float16 package).",
        Defaults.Device, ("cpu", ExecutionDevice.Cpu), ("cuda", ExecutionDevice.Cuda));

    public Option<AdmissionOrder> Admission { get; } = Choice("--admission",
        "Which waiting request gets a free KV slot: the longest (prompt + max_tokens) first, which keeps the batch full to the end of a job, or arrival order.",
        Defaults.Admission, ("longest-first", AdmissionOrder.LongestFirst), ("arrival", AdmissionOrder.Arrival));

    public Option<KvAdmission> KvAdmission { get; } = Choice("--kv-admission",
        "Paged packages: reserve = a request starts when the KV blocks hold it to prompt + max_tokens beside what the running requests will still take (none is ever preempted); on-demand = when its first chunk fits, the youngest running request preempted and recomputed when the blocks run out. KV slots hold the maximum length from the start: both are the same there.",
        Defaults.KvAdmission, ("reserve", Inference.Engine.KvAdmission.Reserve), ("on-demand", Inference.Engine.KvAdmission.OnDemand));

    public Option<Switch> PrefixCache { get; } = Choice("--prefix-cache",
        "Paged packages: on = a request whose prompt starts with whole KV blocks another request computed (a template, a system prompt) shares their KV instead of computing it again; blocks no request holds stay cached until the pool needs them, the least recently used first. GroupQueryAttention packages (KV slots, no blocks) ignore it.",
        Defaults.PrefixCache ? Switch.On : Switch.Off, ("on", Switch.On), ("off", Switch.Off));

    /// <summary>An on|off option's value (System.CommandLine reads a bool option as a flag that takes no value).</summary>
    internal enum Switch
    {
        On,
        Off,
    }

    public Option<SamplingSite> Sampling { get; } = Choice("--sampling",
        "Where sampled tokens (temperature > 0) are drawn: graph = the engine's sampler.onnx where the logits are, so on the GPU no logits row comes down; host = from the row copied down; auto = graph when the logits stay on the GPU, else host.",
        Defaults.Sampling, ("auto", SamplingSite.Auto), ("host", SamplingSite.Host), ("graph", SamplingSite.Graph));

    public Option<CudaGraphUse> CudaGraphs { get; } = Choice("--cuda-graphs",
        "Decode steps replay as CUDA graphs (captured once per batch size bucket) instead of launching each kernel from the host: auto = with --device cuda and a GroupQueryAttention package; on = always (an error where they cannot be used); off = never.",
        Defaults.CudaGraphs, ("auto", CudaGraphUse.Auto), ("on", CudaGraphUse.On), ("off", CudaGraphUse.Off));

    /// <summary>An option that takes one of <paramref name="choices"/> by name (any case, or as the enum value's own name, which
    /// the help prints as the default); another value is a usage error naming them.</summary>
    private static Option<T> Choice<T>(string name, string description, T defaultValue, params (string Name, T Value)[] choices)
    {
        var names = choices.Select(c => c.Name).ToArray();
        var allowed = names.Length == 1 ? names[0] : $"{string.Join(", ", names[..^1])} or {names[^1]}";
        return new Option<T>(name)
        {
            HelpName = string.Join('|', names),
            Description = description,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = result =>
            {
                var value = result.Tokens.Single().Value;
                foreach (var (choice, choiceValue) in choices)
                {
                    // the help shows the default as the enum names it ([default: LongestFirst]): that spelling works too
                    if (string.Equals(choice, value, StringComparison.OrdinalIgnoreCase)
                        || string.Equals(choiceValue?.ToString(), value, StringComparison.OrdinalIgnoreCase)) return choiceValue;
                }
                result.AddError($"{name} must be {allowed}, not '{value.ToLowerInvariant()}'");
                return default!;
            },
        };
    }

    /// <summary>The flag of each <see cref="EngineOptions"/> property, for its validation errors (<see cref="CommandErrors"/>).</summary>
    public static IReadOnlyDictionary<string, string> FlagOf { get; } = new ModelOptions().Flags();

    private Dictionary<string, string> Flags() => new()
    {
        [nameof(Inference.Engine.EngineOptions.MaxBatchSize)] = MaxBatchSize.Name,
        [nameof(Inference.Engine.EngineOptions.MaxScheduledTokens)] = MaxScheduledTokens.Name,
        [nameof(Inference.Engine.EngineOptions.NumKvBlocks)] = NumKvBlocks.Name,
        [nameof(Inference.Engine.EngineOptions.MaxSequenceLength)] = MaxSequenceLength.Name,
        [nameof(Inference.Engine.EngineOptions.NumThreads)] = Threads.Name,
        [nameof(Inference.Engine.EngineOptions.Device)] = Device.Name,
        [nameof(Inference.Engine.EngineOptions.Admission)] = Admission.Name,
        [nameof(Inference.Engine.EngineOptions.KvAdmission)] = KvAdmission.Name,
        [nameof(Inference.Engine.EngineOptions.PrefixCache)] = PrefixCache.Name,
        [nameof(Inference.Engine.EngineOptions.Sampling)] = Sampling.Name,
        [nameof(Inference.Engine.EngineOptions.CudaGraphs)] = CudaGraphs.Name,
    };

    /// <summary>The embedded default: <c>models/tiny</c> copied beside the program at build time.</summary>
    public static string DefaultModelPath => Path.Combine(AppContext.BaseDirectory, "models", "tiny");

    /// <param name="served">The command runs jobs: its <c>--model</c> is <see cref="Served"/> (<c>[NAME=]DIR</c>), else <see cref="Model"/>.</param>
    public void AddTo(Command command, bool served = false)
    {
        command.Options.Add(served ? Served : Model);
        command.Options.Add(MaxBatchSize);
        command.Options.Add(MaxScheduledTokens);
        command.Options.Add(NumKvBlocks);
        command.Options.Add(MaxSequenceLength);
        command.Options.Add(Threads);
        command.Options.Add(Device);
        command.Options.Add(Admission);
        command.Options.Add(KvAdmission);
        command.Options.Add(PrefixCache);
        command.Options.Add(Sampling);
        command.Options.Add(CudaGraphs);
    }

    public EngineOptions EngineOptions(ParseResult result) => new()
    {
        MaxBatchSize = result.GetValue(MaxBatchSize),
        MaxScheduledTokens = result.GetValue(MaxScheduledTokens),
        NumKvBlocks = result.GetValue(NumKvBlocks),
        MaxSequenceLength = result.GetValue(MaxSequenceLength),
        NumThreads = result.GetValue(Threads),
        Device = result.GetValue(Device),
        Admission = result.GetValue(Admission),
        KvAdmission = result.GetValue(KvAdmission),
        PrefixCache = result.GetValue(PrefixCache) == Switch.On,
        Sampling = result.GetValue(Sampling),
        CudaGraphs = result.GetValue(CudaGraphs),
    };

    /// <summary>The models given with <see cref="Served"/>, the default first; none given, the embedded one.</summary>
    public IReadOnlyList<ModelChoice> ServedModels(ParseResult result) =>
        result.GetValue(Served) is { Length: > 0 } values ? [.. values.Select(ModelChoice.Parse)] : [ModelChoice.Default];

    /// <summary>The one model of a command that serves one (<c>run</c>, <c>pipeline run</c>).</summary>
    public ModelChoice OneServedModel(ParseResult result, string command) => ServedModels(result) is [var one] ? one
        : throw new UsageException($"{command} runs one model: give --model once (serve takes several)");

    public LoadedModel Open(ParseResult result) =>
        OpenShowingWait(result.GetValue(Model)?.FullName ?? DefaultModelPath, EngineOptions(result));

    /// <summary>
    /// Opens the model for a command, saying on stderr that it is loading once that takes a while (a 7B package on a CPU
    /// takes minutes), and printing its <see cref="LoadedModel.SlotsNote"/>.
    /// </summary>
    public static LoadedModel OpenShowingWait(string path, EngineOptions options)
    {
        var waiting = new WaitingLine();
        using var ticker = new Timer(_ => waiting.Report("loading the model"), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
        try
        {
            var model = LoadedModel.Open(path, options);
            if (model.SlotsNote is { } note) waiting.Note(note);
            return model;
        }
        finally
        {
            waiting.Done();
        }
    }
}

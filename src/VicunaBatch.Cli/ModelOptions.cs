using System.CommandLine;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;

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

    public Option<double> KvSwapSpace { get; } = new("--kv-swap-space")
    {
        HelpName = "GiB",
        Description = "Paged packages: page-locked host memory (GiB) that holds the KV of requests preempted when the KV blocks run out, so they resume instead of being recomputed; 0 = recompute only. Taken only with --kv-admission on-demand: reserve admission preempts nobody.",
        DefaultValueFactory = _ => Defaults.KvSwapSpaceBytes / (double)(1L << 30),
    };

    public ModelOptions()
    {
        KvSwapSpace.Validators.Add(result =>
        {
            var gib = result.GetValueOrDefault<double>();
            if (!double.IsFinite(gib) || gib < 0) result.AddError($"--kv-swap-space {gib.ToString(System.Globalization.CultureInfo.InvariantCulture)}: must be a number of GiB >= 0");
        });
    }

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
        "cpu, or cuda: ONNX Runtime's CUDA provider with the KV cache on the device, one engine on each GPU (--gpus) (needs ONNX Runtime GPU's native libraries and a float16 package).",
        Defaults.Device, ("cpu", ExecutionDevice.Cpu), ("cuda", ExecutionDevice.Cuda));

    /// <summary><c>--gpus 0,1</c>: the GPUs of <see cref="GpuChoice"/>; null (not given): every visible one.</summary>
    public Option<IReadOnlyList<int>?> Gpus { get; } = new("--gpus")
    {
        HelpName = "0,1",
        Description = "With --device cuda: the GPUs to run the model on, one engine each, all fed from the same queue. Default: every GPU this process sees.",
        CustomParser = result =>
        {
            var value = result.Tokens.Single().Value;
            if (GpuChoice.Parse(value) is { } gpus) return gpus;
            result.AddError($"--gpus takes GPU numbers separated by commas (0,1), not '{value}'");
            return null;
        },
    };

    /// <summary>
    /// <c>--engines N</c>, not in the help: N engines of the model on the CPU, fed from one queue as the engines of several
    /// GPUs are: how the tests run the several-engine path where there is no GPU.
    /// </summary>
    public Option<int> CpuEngines { get; } = new("--engines")
    {
        Hidden = true,
        Description = "On the CPU: engines of the model, fed from one queue (the several-GPU path without a GPU).",
        DefaultValueFactory = _ => 1,
    };

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

    /// <summary>--kv-swap-space's GiB in bytes (the option's validator refused what is not a finite number >= 0).</summary>
    private static long SwapBytes(double gib) => (long)Math.Round(Math.Min(gib, 1L << 32) * (1L << 30));

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
        [nameof(Inference.Engine.EngineOptions.KvSwapSpaceBytes)] = KvSwapSpace.Name,
        [nameof(Inference.Engine.EngineOptions.PrefixCache)] = PrefixCache.Name,
        [nameof(Inference.Engine.EngineOptions.Sampling)] = Sampling.Name,
        [nameof(Inference.Engine.EngineOptions.CudaGraphs)] = CudaGraphs.Name,
    };

    /// <summary>The embedded default: <c>models/tiny</c> copied beside the program at build time.</summary>
    public static string DefaultModelPath => Path.Combine(AppContext.BaseDirectory, "models", "tiny");

    /// <param name="served">The command runs jobs: its <c>--model</c> is <see cref="Served"/> (<c>[NAME=]DIR</c>), else <see cref="Model"/>.</param>
    /// <param name="engines">The command runs the model on several engines: it takes <see cref="Gpus"/> (and <see cref="CpuEngines"/>).</param>
    public void AddTo(Command command, bool served = false, bool engines = false)
    {
        command.Options.Add(served ? Served : Model);
        if (engines)
        {
            command.Options.Add(Gpus);
            command.Options.Add(CpuEngines);
        }
        command.Options.Add(MaxBatchSize);
        command.Options.Add(MaxScheduledTokens);
        command.Options.Add(NumKvBlocks);
        command.Options.Add(MaxSequenceLength);
        command.Options.Add(Threads);
        command.Options.Add(Device);
        command.Options.Add(Admission);
        command.Options.Add(KvAdmission);
        command.Options.Add(KvSwapSpace);
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
        KvSwapSpaceBytes = SwapBytes(result.GetValue(KvSwapSpace)),
        PrefixCache = result.GetValue(PrefixCache) == Switch.On,
        Sampling = result.GetValue(Sampling),
        CudaGraphs = result.GetValue(CudaGraphs),
    };

    /// <summary>
    /// The options of each engine the command runs the model on: one per GPU of <see cref="Gpus"/> (every visible GPU
    /// when it is not given) with <c>--device cuda</c>, each <see cref="EngineOptions.OnGpu"/>; <see cref="CpuEngines"/>
    /// on the CPU. <c>--gpus</c> on the CPU, <c>--engines</c> on CUDA and a GPU this process does not see are usage errors.
    /// </summary>
    public IReadOnlyList<EngineOptions> EachEngine(ParseResult result)
    {
        var options = EngineOptions(result);
        var gpus = result.GetValue(Gpus);
        var numCpuEngines = result.GetValue(CpuEngines);
        if (options.Device != ExecutionDevice.Cuda)
        {
            if (gpus is not null) throw new UsageException("--gpus chooses GPUs: it needs --device cuda (on the CPU the model runs on one engine)");
            if (numCpuEngines < 1) throw new UsageException($"--engines {numCpuEngines}: must be at least 1");
            return [.. Enumerable.Repeat(options, numCpuEngines)];
        }
        if (result.GetResult(CpuEngines) is { Implicit: false }) throw new UsageException("--engines is for the CPU; with --device cuda the model runs on one engine a GPU: choose them with --gpus");
        var numVisible = GpuChoice.NumVisible();
        if (GpuChoice.Problem(gpus, numVisible) is { } problem)
            throw new UsageException(gpus is null ? $"--device cuda: {problem}" : $"--gpus {string.Join(',', gpus)}: {problem}");
        return [.. GpuChoice.Resolve(gpus, numVisible).Select(options.OnGpu)];
    }

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
    public static LoadedModel OpenShowingWait(string path, EngineOptions options) => OpenShowingWait(path, [options])[0];

    /// <summary>As <see cref="OpenShowingWait(string, EngineOptions)"/>, once for each engine (<see cref="LoadedModel.OpenEach"/>), in parallel.</summary>
    public static IReadOnlyList<LoadedModel> OpenShowingWait(string path, IReadOnlyList<EngineOptions> engines)
    {
        var waiting = new WaitingLine();
        var what = engines.Count == 1 ? "loading the model" : $"loading the model on {engines.Count} engines";
        using var ticker = new Timer(_ => waiting.Report(what), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
        try
        {
            foreach (var options in engines) options.Validate();
            var models = LoadedModel.OpenEach(PackageFiles.InDirectory(path), engines);
            foreach (var note in LoadedModel.SlotsNotes(models)) waiting.Note(note);
            return models;
        }
        finally
        {
            waiting.Done();
        }
    }
}

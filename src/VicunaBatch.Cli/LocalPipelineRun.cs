using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Execution;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Local;

namespace VicunaBatch.Cli;

/// <summary>What <c>vicuna-batch pipeline run</c> was asked to do; the directories override the definition's source and output.</summary>
internal sealed record LocalPipelineSettings(
    string DefinitionPath,
    string? SourceDirectory,
    string? OutputDirectory,
    ModelChoice Model,
    EngineOptions Engine,
    int Workers = 4)
{
    /// <summary>Retry delays of the run-end webhook within this process; what is still undelivered stays in the outbox for the next run.</summary>
    public IReadOnlyList<TimeSpan> WebhookRetryDelays { get; init; } = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3)];

    /// <summary>Each stage's name and progress on stderr (the command line; tests run without).</summary>
    public bool ShowProgress { get; init; }

    /// <summary>Wraps the engine driver (tests: a driver that stops waiting, as a timer-hosted run does).</summary>
    public Func<IJobDriver, IJobDriver>? WrapDriver { get; init; }

    /// <summary>Every setting in range, checked before the run writes any of its state.</summary>
    public void Validate()
    {
        Engine.Validate();
        new ShardPumpOptions { MaxConcurrentShards = Workers }.Validate();
    }
}

/// <summary>A finished <c>pipeline run</c>: the run's result, where summaries went, and the webhook attempts made now.</summary>
internal sealed record LocalPipelineSummary(PipelineRunResult Run, string OutputDirectory, IReadOnlyList<WebhookAttempt> WebhookAttempts)
{
    /// <summary>The output's blob prefix (summary and manifest names in the manifest are relative to the output folder).</summary>
    public string OutputPrefix { get; init; } = "";
}

/// <summary>
/// One pipeline run on this machine: documents from a folder, each stage a job on the same one-machine parts as
/// <c>run</c> (<see cref="OneMachine"/> over <c>OUT/.state/</c>, drained through one engine by <see cref="LocalDrain"/>),
/// summaries and manifest in the output folder, the watermark and run lock in the state's blob store, and the webhook
/// through the outbox.
/// </summary>
internal sealed class LocalPipelineRun(LocalPipelineSettings settings, TimeProvider time)
{
    public static PipelineDefinition Load(LocalPipelineSettings settings)
    {
        if (!File.Exists(settings.DefinitionPath)) throw new UsageException($"pipeline definition not found: {settings.DefinitionPath}");
        return Load(settings.DefinitionPath, settings.SourceDirectory, settings.OutputDirectory);
    }

    /// <summary>Reads a definition; relative folders are relative to its file; the directories, when given, replace source and output.</summary>
    public static PipelineDefinition Load(string definitionPath, string? sourceDirectory = null, string? outputDirectory = null)
    {
        var definition = PipelineDefinition.Parse(File.ReadAllText(definitionPath));
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(definitionPath))!;
        var source = sourceDirectory is { } s
            ? definition.Source with { Location = PipelineLocation.OfFolder(Path.GetFullPath(s)) }
            : definition.Source with { Location = InFolder(definition.Source.Location, baseDir, "source", "--source") };
        var output = outputDirectory is { } o ? PipelineLocation.OfFolder(Path.GetFullPath(o)) : InFolder(definition.Output, baseDir, "output", "--out");
        return definition with { Source = source, Output = output };
    }

    public async Task<LocalPipelineSummary> RunAsync(CancellationToken cancellationToken = default)
    {
        settings.Validate();
        var definition = Load(settings);
        if (!Directory.Exists(definition.Source.Location.Folder)) throw new UsageException($"source folder not found: {definition.Source.Location.Folder}");
        Inference.Package.ModelPackage.Load(settings.Model.Path); // a bad model path fails before the state folder is made
        var outDir = definition.Output.Folder!;
        var state = new LocalDataFolder(Path.Combine(outDir, ".state"));
        using var folderLock = LocalJobRun.TakeStateFolder(state, $"pipeline {definition.Name}");
        var input = new InputOptions();
        await using var services = OneMachine.Build(state.Path, input, [settings.Model.Name], time, new WebhookDelivererOptions
        {
            SigningSecret = state.SigningSecret(), RetryDelays = settings.WebhookRetryDelays, Timeout = TimeSpan.FromSeconds(10),
        });
        var blobs = services.GetRequiredService<IBlobStore>();
        var runs = services.GetRequiredService<PipelineRuns>();
        // this process owns the state folder (folder lock): a pipeline lock left by a killed run is released
        await runs.BreakLockAsync(definition.Name, cancellationToken);
        // the run's events are signed with the pipeline's secret, found with its definition as every host finds it
        await services.GetRequiredService<PipelineDefinitionStore>().SaveAsync(await File.ReadAllTextAsync(settings.DefinitionPath, cancellationToken), cancellationToken);

        using var model = settings.ShowProgress ? ModelOptions.OpenShowingWait(settings.Model.Path, settings.Engine) : LoadedModel.Open(settings.Model.Path, settings.Engine);
        var prompts = RequestPrompts.Of(model) ?? throw new UsageException($"model '{model.Name}' {model.Package.NoTokenizer}: pipelines need one to split documents");
        IJobDriver driver = new LocalJobDriver(new LocalDrain(services, [model], settings.Model.Name, EngineWorkerOptions.OneMachine(settings.Workers, input: input)), settings.ShowProgress);
        var runner = runs.Runner(definition,
            new FolderBlobStore(new FolderBlobStoreOptions { RootPath = definition.Source.Location.Folder! }),
            // the writes in progress go to the state folder beside the summaries, not to a .tmp/ among them
            new FolderBlobStore(new FolderBlobStoreOptions { RootPath = outDir, TempPath = Path.Combine(state.Path, "output-tmp") }),
            new TokenizerDocuments(prompts.Tokenizer), prompts.ContextLength, settings.WrapDriver?.Invoke(driver) ?? driver);

        var result = await runner.RunAsync(cancellationToken);
        // this run's event and any an earlier run left in the outbox, on the short local schedule
        var attempts = definition.Webhook is null ? []
            : await services.GetRequiredService<WebhookDeliverer>().DeliverPendingAsync(WebhookWait, cancellationToken);
        return new LocalPipelineSummary(result, outDir, attempts) { OutputPrefix = definition.Output.Prefix };
    }

    /// <summary>How long the run waits for its webhook's attempts (and their retries) before leaving the rest in the outbox.</summary>
    private TimeSpan WebhookWait => settings.WebhookRetryDelays.Aggregate(TimeSpan.FromSeconds(1), (a, b) => a + b + TimeSpan.FromSeconds(10));

    internal static PipelineLocation InFolder(PipelineLocation location, string baseDir, string field, string flag)
    {
        if (location.Folder is null)
            throw new UsageException($"{field} is container \"{location.Container}\": this command reads and writes local folders; pass {flag} DIR");
        // relative folders are relative to the definition file; the prefix stays a blob-name prefix inside the folder
        return location with { Folder = Path.GetFullPath(Path.Combine(baseDir, location.Folder)) };
    }
}

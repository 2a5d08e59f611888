using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Text;
using VicunaBatch.Inference;
using VicunaBatch.Local;
using VicunaBatch.Worker;

namespace VicunaBatch.Cli;

/// <summary>What <c>vicuna-batch pipeline run</c> was asked to do; the directories override the definition's source and output.</summary>
internal sealed record LocalPipelineSettings(
    string DefinitionPath,
    string? SourceDirectory,
    string? OutputDirectory,
    string ModelPath,
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
/// One pipeline run on this machine: documents from a folder, each stage a job on the same local parts as <c>run</c>
/// (<see cref="LocalJobParts"/> in <c>OUT/.state/</c>: SQLite queue, folder stores, one engine), summaries and manifest
/// in the output folder, the watermark and run lock in the state's blob store, and the webhook through the outbox.
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
        Inference.Package.ModelPackage.Load(settings.ModelPath); // a bad model path fails before the state folder is made
        var outDir = definition.Output.Folder!;
        var stateDir = Path.Combine(outDir, ".state");
        using var folderLock = LocalJobParts.LockStateFolder(stateDir, $"pipeline {definition.Name}");
        var parts = new LocalJobParts(stateDir, new InputOptions(), time);
        // this process owns the state folder (folder lock): queue locks and a pipeline lock left by a killed run are released
        await parts.Queue.ReleaseAllLocksAsync(cancellationToken);
        await new PipelineState(parts.Blobs, definition.Name, time).BreakLockAsync(cancellationToken);

        using var model = settings.ShowProgress ? ModelOptions.OpenShowingWait(settings.ModelPath, settings.Engine) : LoadedModel.Open(settings.ModelPath, settings.Engine);
        var tokenizer = model.Tokenizer ?? throw new UsageException($"model '{model.Name}' has no tokenizer.model: pipelines need one to split documents");
        var outbox = new SqliteWorkQueue(new SqliteWorkQueueOptions { DatabasePath = Path.Combine(stateDir, "queue.db"), QueueName = "webhooks" }, time);
        await outbox.ReleaseAllLocksAsync(cancellationToken);
        IJobDriver driver = new LocalJobDriver(parts, model, new RequestDefaults(), settings.Workers, settings.ShowProgress);
        var stages = new PipelineStages(parts.Blobs, parts.Submitter, settings.WrapDriver?.Invoke(driver) ?? driver);
        var pipelineParts = new PipelineParts(
            new FolderBlobStore(new FolderBlobStoreOptions { RootPath = definition.Source.Location.Folder! }),
            // the writes in progress go to the state folder beside the summaries, not to a .tmp/ among them
            new FolderBlobStore(new FolderBlobStoreOptions { RootPath = outDir, TempPath = Path.Combine(stateDir, "output-tmp") }),
            parts.Blobs, stages, new SentencePieceDocuments(tokenizer), model.Engine.MaxSequenceLength, new WebhookOutbox(outbox));

        var result = await new PipelineRunner(definition, pipelineParts, time).RunAsync(cancellationToken);
        var attempts = definition.Webhook is { } webhook
            ? await DeliverWebhooksAsync(outbox, parts.Blobs, webhook, cancellationToken)
            : [];
        return new LocalPipelineSummary(result, outDir, attempts) { OutputPrefix = definition.Output.Prefix };
    }

    /// <summary>Delivers what the outbox holds (this run's event and any left by earlier runs), retrying on the short local schedule.</summary>
    private async Task<IReadOnlyList<WebhookAttempt>> DeliverWebhooksAsync(
        SqliteWorkQueue outbox, IBlobStore blobs, PipelineWebhook webhook, CancellationToken cancellationToken)
    {
        var policy = new WebhookUrlPolicy(new WebhookUrlPolicyOptions { AllowHttp = true, AllowLoopback = true });
        using var http = new HttpClient(WebhookHttp.CreateHandler(policy));
        var deliverer = new WebhookDeliverer(outbox, blobs, http, policy, new WebhookDelivererOptions
        {
            SigningSecret = webhook.Secret,
            RetryDelays = settings.WebhookRetryDelays,
            Timeout = TimeSpan.FromSeconds(10),
        }, time);
        var attempts = new List<WebhookAttempt>();
        var deadline = time.GetUtcNow() + settings.WebhookRetryDelays.Aggregate(TimeSpan.FromSeconds(1), (a, b) => a + b + TimeSpan.FromSeconds(10));
        while (await outbox.CountAsync(cancellationToken) > 0 && time.GetUtcNow() < deadline)
        {
            var messages = await outbox.ReceiveAsync(16, cancellationToken);
            if (messages.Count == 0)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200), time, cancellationToken);
                continue;
            }
            foreach (var message in messages)
                if (await deliverer.DeliverAsync(message, cancellationToken) is { } attempt) attempts.Add(attempt);
        }
        return attempts;
    }

    internal static PipelineLocation InFolder(PipelineLocation location, string baseDir, string field, string flag)
    {
        if (location.Folder is null)
            throw new UsageException($"{field} is container \"{location.Container}\": this command reads and writes local folders; pass {flag} DIR");
        // relative folders are relative to the definition file; the prefix stays a blob-name prefix inside the folder
        return location with { Folder = Path.GetFullPath(Path.Combine(baseDir, location.Folder)) };
    }
}

/// <summary>The model's SentencePiece tokenizer as the pipeline's splitter sees it.</summary>
internal sealed class SentencePieceDocuments(TextTokenizer tokenizer) : IDocumentTokenizer
{
    public IReadOnlyList<int> Encode(string text) => tokenizer.Encode(text);

    public string Decode(IReadOnlyList<int> ids) => tokenizer.Decode(ids);
}

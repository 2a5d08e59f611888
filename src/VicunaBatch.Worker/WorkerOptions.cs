using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Services;
using VicunaBatch.Execution;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;

namespace VicunaBatch.Worker;

/// <summary>
/// The worker host's settings, bound from configuration: section <c>Worker</c> (these properties), <c>Engine</c>
/// (<see cref="EngineOptions"/>), <c>Model:Path</c> or <c>Model:SourceUri</c> (with <c>Model:Read</c>), <c>Model:Name</c>. On Azure the Container App sets them as
/// environment variables (<c>Worker__DrainSeconds</c>, <c>Model__SourceUri</c>, <c>Model__Name</c>; see infra/bicep/modules/workers.bicep).
/// </summary>
public sealed class WorkerOptions
{
    /// <summary>Model package folder (<c>Model:Path</c>). Default: the embedded tiny model beside the program.</summary>
    public string ModelPath { get; set; } = Path.Combine(AppContext.BaseDirectory, "models", "tiny");

    /// <summary>
    /// <c>Model:SourceUri</c>: a blob folder holding the package (<c>https://ACCOUNT.blob.core.windows.net/models/NAME</c>),
    /// read at start straight into host memory (no local copy: a replica's disk is smaller than a 13B package) and
    /// loaded from there. Null: the package is the folder <see cref="ModelPath"/>.
    /// </summary>
    public Uri? ModelSourceUri { get; set; }

    /// <summary><c>Model:Read</c>: how a package at <see cref="ModelSourceUri"/> is read (chunk size, reads in flight).</summary>
    public PackageReadOptions ModelRead { get; set; } = new();

    /// <summary>
    /// <c>Model:Name</c>: the name the deployment serves the model by, one of its served models. The worker drains that
    /// model's work queue (in a data folder; on Azure the queue is <c>ServiceBus:QueueName</c>, set per model by infra)
    /// and names every output with it. Null: the package folder's name.
    /// </summary>
    public string? ModelName { get; set; }

    /// <summary>The served name: <see cref="ModelName"/>, or the package folder's name (the blob folder's with <see cref="ModelSourceUri"/>).</summary>
    public string ServedName => ModelName ?? (ModelSourceUri is { } source ? source.AbsolutePath.TrimEnd('/').Split('/')[^1] : ModelPackage.NameOf(ModelPath));

    /// <summary>Where the package is, as logs name it.</summary>
    public string ModelLocation => ModelSourceUri?.ToString() ?? ModelPath;

    /// <summary>
    /// After SIGTERM: seconds the shards in flight may run on (finished requests are checkpointed as they end)
    /// before the rest are cancelled and their messages released to other workers. Default 30. Keep it below the
    /// platform's termination grace period.
    /// </summary>
    public int DrainSeconds { get; set; } = 30;

    /// <summary>Most shard messages held at once (each is locked and renewed while held). Default 16.</summary>
    public int MaxConcurrentShards { get; set; } = 16;

    /// <summary>
    /// Prefetch: another shard is taken while fewer than this many engine capacities of requests are in flight
    /// (running + waiting), so the waiting pool stays at or above the engine's capacity. Default 2.
    /// </summary>
    public int PrefetchCapacities { get; set; } = EnginePrefetch.DefaultCapacities;

    /// <summary>Wait between polls of an empty queue, in milliseconds. Default 500.</summary>
    public int PollIntervalMs { get; set; } = 500;

    /// <summary>
    /// A shard whose last this-many deliveries in a row made no progress (no request checkpointed) is dead-lettered by
    /// the worker, which writes its shard report so its requests become error lines and the job still finalizes.
    /// Restarts and evictions that let requests finish, and deliveries given back on SIGTERM, never count. Default 4.
    /// </summary>
    public int MaxDeliveriesWithoutProgress { get; set; } = 4;

    /// <summary>
    /// A shard message delivered this often goes on as a fresh message (a new id), so Service Bus, which dead-letters a
    /// message after its max delivery count (5 in infra), never takes a shard that is making progress. Default 4: below it.
    /// </summary>
    public int ResendAfterDeliveries { get; set; } = 4;

    /// <summary>Seconds between lock renewals of each held message; below the queue's lock duration (SQLite 60 s, Service Bus 5 min in infra). Default 20.</summary>
    public int LockRenewalSeconds { get; set; } = 20;

    /// <summary>Milliseconds between rewrites of a running shard's progress record (a batch's counts and usage move per
    /// request from it); 0: after every request, a blob write each. Default 1000.</summary>
    public int ProgressIntervalMs { get; set; } = 1000;

    /// <summary>
    /// Where <c>/healthz</c> listens (<c>Worker:HealthUrls</c>, ';'-separated). Default http://127.0.0.1:8081; in a
    /// container use http://0.0.0.0:8081 for the platform's probes. Port 0 picks a free port.
    /// </summary>
    public string HealthUrls { get; set; } = "http://127.0.0.1:8081";

    /// <summary>Tokens for requests that give no max_tokens, and their default sampling.</summary>
    public RequestDefaults Defaults { get; set; } = new();

    /// <summary>Input parsing limits; must match the submitter's (shards carry line ranges, not parsed requests).</summary>
    public InputOptions Input { get; set; } = new();

    /// <summary>The engine chain's options from these settings.</summary>
    public EngineWorkerOptions EngineWorker() => new()
    {
        Pump = new ShardPumpOptions { MaxConcurrentShards = MaxConcurrentShards, PollInterval = TimeSpan.FromMilliseconds(PollIntervalMs) },
        PrefetchCapacities = PrefetchCapacities,
        Defaults = Defaults,
        Input = Input,
        Processor = new ShardProcessorOptions
        {
            MaxDeliveriesWithoutProgress = MaxDeliveriesWithoutProgress, ResendAfterDeliveries = ResendAfterDeliveries,
            LockRenewalInterval = TimeSpan.FromSeconds(LockRenewalSeconds), ProgressInterval = TimeSpan.FromMilliseconds(ProgressIntervalMs),
        },
    };

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ModelPath)) throw new ArgumentException("Model:Path is required", nameof(ModelPath));
        if (!ServedModels.IsValidName(ServedName))
            throw new ArgumentException($"Model:Name \"{ServedName}\" (the package folder's name unless set) {ServedModels.NameRule}", nameof(ModelName));
        ArgumentOutOfRangeException.ThrowIfNegative(DrainSeconds, nameof(DrainSeconds));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConcurrentShards, 1, nameof(MaxConcurrentShards));
        ArgumentOutOfRangeException.ThrowIfLessThan(PrefetchCapacities, 1, nameof(PrefetchCapacities));
        ArgumentOutOfRangeException.ThrowIfLessThan(PollIntervalMs, 1, nameof(PollIntervalMs));
        ArgumentOutOfRangeException.ThrowIfNegative(ProgressIntervalMs, nameof(ProgressIntervalMs));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxDeliveriesWithoutProgress, 1, nameof(MaxDeliveriesWithoutProgress));
        ArgumentOutOfRangeException.ThrowIfLessThan(ResendAfterDeliveries, 2, nameof(ResendAfterDeliveries));
        ArgumentOutOfRangeException.ThrowIfLessThan(LockRenewalSeconds, 1, nameof(LockRenewalSeconds));
        if (string.IsNullOrWhiteSpace(HealthUrls)) throw new ArgumentException("Worker:HealthUrls is required", nameof(HealthUrls));
        ModelRead.Validate();
        Defaults.Validate();
    }
}

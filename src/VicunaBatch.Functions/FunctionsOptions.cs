using Microsoft.Extensions.Configuration;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Functions;

/// <summary>
/// Settings of the Function App beyond <c>Storage__*</c> / <c>ServiceBus__*</c> (those go to AddAzureTransport).
/// Secrets are app settings that hold Key Vault references (<c>@Microsoft.KeyVault(SecretUri=…)</c>), resolved by
/// the platform with the app's identity (<c>keyVaultReferenceIdentity</c> in infra/bicep), so none is in the template.
/// </summary>
public sealed class FunctionsOptions
{
    /// <summary>Accepted bearer keys, comma-separated (<c>Api__Keys</c>); each key is a tenant. Required.</summary>
    public List<string> ApiKeys { get; } = [];

    /// <summary>Largest accepted upload body in bytes (<c>Api__MaxUploadBytes</c>). Default <see cref="Api.ApiOptions.MaxUploadBytes"/>'s, 200 MiB.</summary>
    public long MaxUploadBytes { get; set; } = new Api.ApiOptions().MaxUploadBytes;

    /// <summary>
    /// The installation's secret that tenant ids are keyed with (<c>Api__TenantKey</c>; <see cref="Api.ApiOptions.TenantKey"/>),
    /// at least 32 characters. Required. Never change it: the tenants' batches and files are stored under the ids it made.
    /// </summary>
    public string TenantKey { get; set; } = "";

    /// <summary>The <c>whsec_…</c> secret that signs webhooks of jobs without their own (inbox jobs) (<c>Webhooks__SigningSecret</c>). Required.</summary>
    public string SigningSecret { get; set; } = "";

    /// <summary>Webhook URLs may be http and loopback (<c>Webhooks__AllowLoopback</c>). Default false; only for tests and local runs.</summary>
    public bool AllowLoopbackWebhooks { get; set; }

    /// <summary>Waits between webhook attempts (<c>Webhooks__RetryDelays</c>, comma-separated time spans). Default the
    /// Standard Webhooks schedule of <see cref="WebhookDelivererOptions.RetryDelays"/> (8 attempts over about 27 h).
    /// Attempts (one more than the delays) must stay below host.json's <c>maxDequeueCount</c> (<see cref="HostMaxDequeueCount"/>).</summary>
    public IReadOnlyList<TimeSpan>? RetryDelays { get; set; }

    /// <summary>host.json <c>extensions.queues.maxDequeueCount</c>: deliveries after which the host moves a message to its poison queue.</summary>
    public const int HostMaxDequeueCount = 10;

    /// <summary>
    /// The connection the queue triggers (Finalizer, Deliverer, Inbox) read their Storage queues with: the settings
    /// <c>ControlQueues__queueServiceUri</c>, <c>ControlQueues__credential</c> and <c>ControlQueues__clientId</c> (infra/bicep
    /// writes them). Not <c>Storage</c>: the Functions runtime looks a connection <c>X</c> up as <c>AzureWebJobsX</c> first,
    /// so <c>Storage</c> would resolve to the host storage connection <c>AzureWebJobsStorage__*</c> and ignore <c>Storage__*</c>.
    /// </summary>
    public const string QueueTriggerConnection = "ControlQueues";

    /// <summary>Sharding and line limits (<c>Input__RequestsPerShard</c>, …); the workers must use the same. Default <see cref="InputOptions"/>'s.</summary>
    public InputOptions Input { get; set; } = new();

    /// <summary>Inbox jobs (<c>Inbox__CompletionWindow</c>, <c>Inbox__WebhookUrl</c>).</summary>
    public InboxOptions Inbox { get; set; } = new();

    /// <summary>
    /// The models the deployment serves (<c>Models__Served</c>, comma-separated, the default first), each with its work
    /// queue (<c>ServiceBus__ModelQueuePrefix</c> and its name) and workers; infra sets both from its <c>models</c>. Required.
    /// </summary>
    public List<string> Models { get; } = [];

    /// <summary>Scheduled pipelines (<c>Pipelines__ModelPath</c>, <c>Pipelines__StageWait</c>).</summary>
    public PipelineHostOptions Pipelines { get; set; } = new();

    /// <summary>The deliverer's options from these settings.</summary>
    public WebhookDelivererOptions DelivererOptions() => RetryDelays is { } delays
        ? new WebhookDelivererOptions { SigningSecret = SigningSecret, RetryDelays = delays }
        : new WebhookDelivererOptions { SigningSecret = SigningSecret };

    public static FunctionsOptions From(IConfiguration configuration)
    {
        var options = new FunctionsOptions
        {
            MaxUploadBytes = configuration.GetValue("Api:MaxUploadBytes", new Api.ApiOptions().MaxUploadBytes),
            TenantKey = configuration["Api:TenantKey"] ?? "",
            SigningSecret = configuration["Webhooks:SigningSecret"] ?? "",
            AllowLoopbackWebhooks = configuration.GetValue("Webhooks:AllowLoopback", false),
            RetryDelays = configuration["Webhooks:RetryDelays"] is { Length: > 0 } delays
                ? delays.Split(',', StringSplitOptions.TrimEntries).Select(d => TimeSpan.Parse(d, System.Globalization.CultureInfo.InvariantCulture)).ToList()
                : null,
            Input = configuration.GetSection("Input").Get<InputOptions>() ?? new InputOptions(),
            Inbox = configuration.GetSection("Inbox").Get<InboxOptions>() ?? new InboxOptions(),
            Pipelines = configuration.GetSection("Pipelines").Get<PipelineHostOptions>() ?? new PipelineHostOptions(),
        };
        options.ApiKeys.AddRange((configuration["Api:Keys"] ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        options.Models.AddRange((configuration["Models:Served"] ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        return options;
    }

    public void Validate()
    {
        // a reference the platform could not resolve (secret missing, no access) arrives as its own text
        foreach (var (name, value) in new[] { ("Api__Keys", string.Join(',', ApiKeys)), ("Api__TenantKey", TenantKey), ("Webhooks__SigningSecret", SigningSecret) })
            if (value.Contains("@Microsoft.KeyVault(", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"{name} is an unresolved Key Vault reference: create the secret, and check the app identity's Key Vault Secrets User role");
        if (MaxUploadBytes < 1) throw new ArgumentException($"Api__MaxUploadBytes {MaxUploadBytes} must be at least 1");
        if (ApiKeys.Count == 0) throw new ArgumentException("no API key configured: set Api__Keys (comma-separated; a Key Vault reference on Azure)");
        if (TenantKey.Length < Api.ApiOptions.MinTenantKeyLength)
        {
            throw new ArgumentException(TenantKey.Length == 0
                ? "no tenant key configured: set Api__TenantKey (a Key Vault reference on Azure: the secret api-tenant-key, e.g. openssl rand -hex 32)"
                : $"Api__TenantKey must be at least {Api.ApiOptions.MinTenantKeyLength} characters (e.g. openssl rand -hex 32)");
        }
        if (string.IsNullOrEmpty(SigningSecret)) throw new ArgumentException("no webhook signing secret configured: set Webhooks__SigningSecret (whsec_…; a Key Vault reference on Azure)");
        var deliverer = DelivererOptions();
        deliverer.Validate(); // a malformed secret fails here, not at the first delivery
        if (deliverer.RetryDelays.Count + 1 >= HostMaxDequeueCount)
            throw new ArgumentException($"Webhooks__RetryDelays: {deliverer.RetryDelays.Count + 1} attempts must stay below host.json's maxDequeueCount ({HostMaxDequeueCount})");
        if (Models.Count == 0) throw new ArgumentException("no model configured: set Models__Served (the served models' names, comma-separated, the default first)");
        if (ServedModels.Problem(Models) is { } problem) throw new ArgumentException($"Models__Served: {problem}");
        Input.Validate();
        Inbox.Validate();
        Pipelines.Validate();
    }
}

/// <summary>Options of the Pipelines timer.</summary>
public sealed class PipelineHostOptions
{
    /// <summary>A model package folder (genai_config.json for the context length, tokenizer.model to split documents), the
    /// workers' model. Default none: then <see cref="ModelSourceUri"/>, else the Pipelines timer does nothing.</summary>
    public string? ModelPath { get; set; }

    /// <summary>
    /// <c>Pipelines__ModelSourceUri</c>: the workers' model package folder in blob storage (infra sets it to the one the
    /// workers load); its genai_config.json and tokenizer.model — not the weights — are read into memory at the first tick. Used when <see cref="ModelPath"/> is not set.
    /// </summary>
    public Uri? ModelSourceUri { get; set; }

    /// <summary>How long one tick waits for a stage's job before leaving the run to the next tick. Default 4 min.</summary>
    public TimeSpan StageWait { get; set; } = TimeSpan.FromMinutes(4);

    public void Validate()
    {
        if (StageWait < TimeSpan.Zero) throw new ArgumentException($"Pipelines__StageWait {StageWait} must be >= 0");
        if (ModelPath is { Length: > 0 } path && !File.Exists(Path.Combine(path, Inference.Package.ModelPackage.TokenizerFileName)))
            throw new ArgumentException($"Pipelines__ModelPath {path} has no {Inference.Package.ModelPackage.TokenizerFileName}");
    }
}

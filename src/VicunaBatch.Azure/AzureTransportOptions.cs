using Azure.Storage.Queues;

namespace VicunaBatch.Azure;

/// <summary>
/// Options of <see cref="AzureTransportExtensions.AddAzureTransport"/>, bound from the configuration sections
/// <c>Storage</c> and <c>ServiceBus</c> — the app settings infra/bicep gives the Function App and the GPU
/// workers (<c>Storage__blobServiceUri</c>, <c>Storage__Containers__Jobs</c>, <c>ServiceBus__fullyQualifiedNamespace</c>, …).
/// On Azure every connection is Entra ID (<c>DefaultAzureCredential</c>) to named resources; a connection
/// string is only for Azurite in tests and local development.
/// </summary>
public sealed class AzureTransportOptions
{
    public const string StorageSection = "Storage";
    public const string ServiceBusSection = "ServiceBus";

    /// <summary>Blobs, checkpoints and the control-plane Storage queues.</summary>
    public AzureStorageOptions Storage { get; set; } = new();

    /// <summary>The shard work queue. Optional: a host that only runs the control plane may leave it unset,
    /// and then resolving the work queue fails with a message naming the missing setting.</summary>
    public AzureServiceBusOptions ServiceBus { get; set; } = new();

    public void Validate()
    {
        Storage.Validate();
        ServiceBus.Validate();
    }
}

/// <summary>The storage account. Exactly one of <see cref="ConnectionString"/>, <see cref="AccountName"/>, or both
/// <see cref="BlobServiceUri"/> and <see cref="QueueServiceUri"/> (the service URIs win over the account name).</summary>
public sealed class AzureStorageOptions
{
    /// <summary>Account name; the endpoints are <c>https://{name}.blob.core.windows.net</c> and <c>…queue…</c>. Default none.</summary>
    public string? AccountName { get; set; }

    /// <summary>Blob endpoint (<c>Storage__blobServiceUri</c> in the Function App). Default: from <see cref="AccountName"/>.</summary>
    public Uri? BlobServiceUri { get; set; }

    /// <summary>Queue endpoint (<c>Storage__queueServiceUri</c>). Default: from <see cref="AccountName"/>.</summary>
    public Uri? QueueServiceUri { get; set; }

    /// <summary>Azurite only (tests, local development): a connection string with the account key. Default none; never set on Azure, where shared keys are disabled.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Client id of the user-assigned managed identity (<c>Storage__clientId</c>). Default none: <c>DefaultAzureCredential</c> reads <c>AZURE_CLIENT_ID</c>.</summary>
    public string? ClientId { get; set; }

    public StorageContainerNames Containers { get; set; } = new();

    public StorageQueueNames Queues { get; set; } = new();

    /// <summary>Create the containers and queues when missing, at first use. Default false: on Azure the infra creates them
    /// (and the identities have no right to create containers); true for Azurite.</summary>
    public bool CreateIfMissing { get; set; }

    /// <summary>How long a received control-plane message stays invisible (its lock). Default 5 minutes: a finalizer merges a
    /// large job's results well within it, and the webhook deliverer's 15 s attempt timeout is far below it.</summary>
    public TimeSpan QueueLockDuration { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Encoding of queue message text. Default <see cref="QueueMessageEncoding.Base64"/>: what the Functions queue
    /// trigger expects by default (host.json <c>extensions.queues.messageEncoding</c>).</summary>
    public QueueMessageEncoding MessageEncoding { get; set; } = QueueMessageEncoding.Base64;

    /// <summary>Appends per checkpoint blob before the next segment starts. Default 50,000, the service's limit of blocks in an append blob.</summary>
    public int CheckpointBlocksPerBlob { get; set; } = BlobCheckpointStore.MaxBlocksPerAppendBlob;

    internal bool UsesConnectionString => !string.IsNullOrEmpty(ConnectionString);

    internal Uri BlobEndpoint => BlobServiceUri ?? new Uri($"https://{AccountName}.blob.core.windows.net");

    internal Uri QueueEndpoint => QueueServiceUri ?? new Uri($"https://{AccountName}.queue.core.windows.net");

    public void Validate()
    {
        bool byName = !string.IsNullOrEmpty(AccountName), byUris = BlobServiceUri is not null || QueueServiceUri is not null;
        if (UsesConnectionString && (byName || byUris))
            throw new ArgumentException("Storage: set ConnectionString (Azurite) or AccountName / BlobServiceUri + QueueServiceUri, not both");
        if (!UsesConnectionString && !byName && (BlobServiceUri is null || QueueServiceUri is null))
            throw new ArgumentException("Storage: set AccountName, or both BlobServiceUri and QueueServiceUri (or ConnectionString for Azurite)");
        foreach (var uri in new[] { BlobServiceUri, QueueServiceUri })
            if (uri is { IsAbsoluteUri: false } || uri?.Scheme is not (null or "https" or "http"))
                throw new ArgumentException($"Storage: service URI {uri} must be an absolute http(s) URI");
        if (QueueLockDuration < TimeSpan.FromSeconds(1) || QueueLockDuration > TimeSpan.FromDays(7))
            throw new ArgumentOutOfRangeException(nameof(QueueLockDuration), QueueLockDuration, "must be within [1 s, 7 days] (the Storage queue visibility range)");
        if (CheckpointBlocksPerBlob is < 1 or > BlobCheckpointStore.MaxBlocksPerAppendBlob)
            throw new ArgumentOutOfRangeException(nameof(CheckpointBlocksPerBlob), CheckpointBlocksPerBlob, $"must be within [1, {BlobCheckpointStore.MaxBlocksPerAppendBlob}]");
        Containers.Validate();
        Queues.Validate();
    }
}

/// <summary>Blob containers by role (<c>Storage__Containers__*</c>); the defaults are infra/bicep's names.</summary>
public sealed class StorageContainerNames
{
    /// <summary>Uploaded input files (port names <c>files/…</c>). Default "inputs".</summary>
    public string Inputs { get; set; } = "inputs";

    /// <summary>Per-request checkpoints of running shards. Default "results".</summary>
    public string Results { get; set; } = "results";

    /// <summary>Job state, shard reports, output and error files, tenant indexes: every other port name. Default "jobs".</summary>
    public string Jobs { get; set; } = "jobs";

    /// <summary>Files dropped here become jobs (port names <c>inbox/…</c>). Default "inbox".</summary>
    public string Inbox { get; set; } = "inbox";

    /// <summary>Pipeline definitions and their state (port names <c>pipelines/…</c>). Default "pipelines".</summary>
    public string Pipelines { get; set; } = "pipelines";

    public void Validate()
    {
        foreach (var (role, name) in new[] { ("Inputs", Inputs), ("Results", Results), ("Jobs", Jobs), ("Inbox", Inbox), ("Pipelines", Pipelines) })
            if (!AzureNames.IsContainerOrQueueName(name))
                throw new ArgumentException($"Storage:Containers:{role} \"{name}\" must be 3-63 lowercase letters, digits and single hyphens");
    }
}

/// <summary>Control-plane Storage queues (<c>Storage__Queues__*</c>); each has a <c>&lt;name&gt;-poison</c> queue for dead letters.</summary>
public sealed class StorageQueueNames
{
    /// <summary>Shard-done events, consumed by the finalizer. Default "shard-done".</summary>
    public string ShardDone { get; set; } = "shard-done";

    /// <summary>Webhook deliveries (the outbox), consumed by the deliverer. Default "webhook-deliveries".</summary>
    public string WebhookDeliveries { get; set; } = "webhook-deliveries";

    /// <summary>BlobCreated events of the inbox container, written by the Event Grid subscription (infra/bicep) and consumed by
    /// the Functions inbox trigger. Default "inbox-events".</summary>
    public string InboxEvents { get; set; } = "inbox-events";

    public void Validate()
    {
        foreach (var (role, name) in new[] { ("ShardDone", ShardDone), ("WebhookDeliveries", WebhookDeliveries), ("InboxEvents", InboxEvents) })
            if (!AzureNames.IsContainerOrQueueName(name) || name.Length > 63 - StorageWorkQueue.PoisonSuffix.Length)
                throw new ArgumentException($"Storage:Queues:{role} \"{name}\" must be 3-56 lowercase letters, digits and single hyphens (room for \"{StorageWorkQueue.PoisonSuffix}\")");
    }
}

/// <summary>The Service Bus namespace and work queue. <see cref="FullyQualifiedNamespace"/> (or <see cref="Namespace"/>) on Azure.</summary>
public sealed class AzureServiceBusOptions
{
    /// <summary>Host name, <c>&lt;ns&gt;.servicebus.windows.net</c> (<c>ServiceBus__fullyQualifiedNamespace</c>). Default none.</summary>
    public string? FullyQualifiedNamespace { get; set; }

    /// <summary>Namespace name; the host is <c>{name}.servicebus.windows.net</c>. Default none.</summary>
    public string? Namespace { get; set; }

    /// <summary>A connection string (a local emulator or a test namespace with SAS). Default none; SAS is disabled on the infra's namespace.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Client id of the user-assigned managed identity (<c>ServiceBus__clientId</c>). Default none: <c>AZURE_CLIENT_ID</c>.</summary>
    public string? ClientId { get; set; }

    /// <summary>
    /// The work queue of a worker (<c>ServiceBus__QueueName</c>; infra sets its model's), and of every model where
    /// <see cref="ModelQueuePrefix"/> is unset (one queue for every model). Default "work".
    /// </summary>
    public string QueueName { get; set; } = "work";

    /// <summary>
    /// For the host that submits jobs (the Functions app): each served model's work queue is this prefix and the
    /// model's name (<c>ServiceBus__ModelQueuePrefix</c>; infra sets "work-" and makes a queue per model). A prefix,
    /// not a setting per model, because app setting names cannot carry every model name. Default none: every model's
    /// shards go to <see cref="QueueName"/>.
    /// </summary>
    public string? ModelQueuePrefix { get; set; }

    /// <summary>Messages the receiver fetches ahead. Default 0: a shard runs for minutes, and a prefetched message's lock
    /// runs out while it waits; raise it only with short shards.</summary>
    public int PrefetchCount { get; set; }

    /// <summary>How long one receive waits for a first message before it returns empty. Default 1 s.</summary>
    public TimeSpan ReceiveWaitTime { get; set; } = TimeSpan.FromSeconds(1);

    internal bool IsConfigured => !string.IsNullOrEmpty(FullyQualifiedNamespace) || !string.IsNullOrEmpty(Namespace) || !string.IsNullOrEmpty(ConnectionString);

    internal string Host => !string.IsNullOrEmpty(FullyQualifiedNamespace) ? FullyQualifiedNamespace : $"{Namespace}.servicebus.windows.net";

    public void Validate()
    {
        int numWays = new[] { FullyQualifiedNamespace, Namespace, ConnectionString }.Count(s => !string.IsNullOrEmpty(s));
        if (numWays > 1) throw new ArgumentException("ServiceBus: set one of FullyQualifiedNamespace, Namespace, ConnectionString");
        if (FullyQualifiedNamespace is { Length: > 0 } host && (host.Contains("://") || host.Contains('/')))
            throw new ArgumentException($"ServiceBus:FullyQualifiedNamespace \"{host}\" must be a host name (<ns>.servicebus.windows.net), not a URI");
        ArgumentException.ThrowIfNullOrWhiteSpace(QueueName, "ServiceBus:QueueName");
        if (ModelQueuePrefix is { } prefix && (prefix.Length == 0 || prefix.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.'))))
            throw new ArgumentException($"ServiceBus:ModelQueuePrefix \"{prefix}\" must be letters, digits, '-', '_' or '.' (e.g. \"work-\")");
        ArgumentOutOfRangeException.ThrowIfNegative(PrefetchCount, "ServiceBus:PrefetchCount");
        if (ReceiveWaitTime <= TimeSpan.Zero) throw new ArgumentOutOfRangeException("ServiceBus:ReceiveWaitTime", ReceiveWaitTime, "must be > 0");
    }
}

internal static class AzureNames
{
    /// <summary>Container and queue names: 3-63 of [a-z0-9-], starting and ending with a letter or digit, no "--".</summary>
    public static bool IsContainerOrQueueName(string? name) =>
        name is { Length: >= 3 and <= 63 } && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-')
        && name[0] != '-' && name[^1] != '-' && !name.Contains("--");
}

using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Core;

/// <summary>What the Core services of a deployment are told by their host (<see cref="CoreServiceCollectionExtensions.AddVicunaBatchCore"/>).</summary>
public sealed class CoreOptions
{
    /// <summary>How inputs are parsed and cut into shards; the workers must use the same. Default <see cref="InputOptions"/>'s.</summary>
    public InputOptions Input { get; set; } = new();

    /// <summary>
    /// The names of the models served, the default first (<see cref="ServedModels"/>); each has its own work queue
    /// (<see cref="Ports.IWorkQueues"/>). Required: a host that submits jobs says what it serves.
    /// </summary>
    public IReadOnlyList<string> Models { get; set; } = [];

    /// <summary>
    /// The deliverer's signing secret (for jobs without their own) and retry schedule. Required by a host that delivers
    /// webhooks; without it <see cref="WebhookDeliverer"/> cannot be resolved (a <c>run</c> sends none).
    /// </summary>
    public WebhookDelivererOptions? Webhooks { get; set; }

    /// <summary>Which webhook URLs are allowed. Default https to public addresses only.</summary>
    public WebhookUrlPolicyOptions WebhookUrls { get; set; } = new();

    /// <summary>Jobs made from files dropped in the inbox.</summary>
    public InboxOptions Inbox { get; set; } = new();

    /// <summary>The in-process reader of the shard-done queue (one-machine hosts).</summary>
    public ShardDoneHandlerOptions ShardDone { get; set; } = new();

    public void Validate()
    {
        _ = new ServedModels(Models);
        Input.Validate();
        Webhooks?.Validate();
        Inbox.Validate();
    }
}

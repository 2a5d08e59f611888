namespace VicunaBatch.Core.Ports;

/// <summary>
/// The control plane's queues, beside the work queue: <see cref="ShardDone"/> carries a shard-done event per settled
/// shard (workers send, the finalizer reads), <see cref="WebhookDeliveries"/> is the webhook outbox (the settler sends,
/// the deliverer reads). Storage queues on Azure, SQLite queues in a local data folder.
/// </summary>
public sealed record ControlQueues(IWorkQueue ShardDone, IWorkQueue WebhookDeliveries);

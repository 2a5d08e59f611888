namespace VicunaBatch.Core.Ports;

/// <summary>Every model's shards on one queue (<see cref="IWorkQueues"/>): a deployment that serves one model.</summary>
public sealed class SharedWorkQueue(IWorkQueue queue) : IWorkQueues
{
    public IWorkQueue Of(string model) => queue;
}

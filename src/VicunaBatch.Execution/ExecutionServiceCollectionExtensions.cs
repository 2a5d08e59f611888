using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Execution;

/// <summary>Wiring of the engine chain over a transport's ports.</summary>
public static class ExecutionServiceCollectionExtensions
{
    /// <summary>
    /// Registers the <see cref="ShardPorts"/> of a host that serves one model, <paramref name="model"/>, from the ports a
    /// transport registered (<c>AddLocalTransport</c> or <c>AddAzureTransport</c>).
    /// </summary>
    public static IServiceCollection AddShardPorts(this IServiceCollection services, string model) =>
        services.AddSingleton(sp => sp.ShardPortsOf(model));

    /// <summary>The ports of <paramref name="model"/>'s workers: its name and work queue, and the stores and shard-done queue all share.</summary>
    public static ShardPorts ShardPortsOf(this IServiceProvider services, string model) => new(
        model, services.GetRequiredService<IWorkQueues>().Of(model), services.GetRequiredService<IBlobStore>(), services.GetRequiredService<ICheckpointStore>(),
        services.GetRequiredService<IJobStore>(), services.GetRequiredService<ControlQueues>().ShardDone);
}

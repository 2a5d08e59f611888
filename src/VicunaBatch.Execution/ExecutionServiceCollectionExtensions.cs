using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Execution;

/// <summary>Wiring of the engine chain over a transport's ports.</summary>
public static class ExecutionServiceCollectionExtensions
{
    /// <summary>Registers <see cref="ShardPorts"/> from the ports a transport registered (<c>AddLocalTransport</c> or <c>AddAzureTransport</c>).</summary>
    public static IServiceCollection AddShardPorts(this IServiceCollection services) => services.AddSingleton(sp => new ShardPorts(
        sp.GetRequiredService<IWorkQueue>(), sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<ICheckpointStore>(),
        sp.GetRequiredService<IJobStore>(), sp.GetRequiredService<ControlQueues>().ShardDone));
}

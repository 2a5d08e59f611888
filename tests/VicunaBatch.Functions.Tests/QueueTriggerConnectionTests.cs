using System.Reflection;
using Microsoft.Azure.Functions.Worker;

namespace VicunaBatch.Functions.Tests;

/// <summary>Every queue trigger reads its queue through <see cref="FunctionsOptions.QueueTriggerConnection"/>, the
/// connection infra/bicep writes as <c>ControlQueues__*</c> (tests/VicunaBatch.Infra.Tests checks that side).</summary>
public sealed class QueueTriggerConnectionTests
{
    [Fact]
    public void Every_queue_trigger_names_the_control_queues_connection()
    {
        var triggers = typeof(FunctionsOptions).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(m => m.GetCustomAttribute<FunctionAttribute>() is not null)
            .SelectMany(m => m.GetParameters().Select(p => (Function: m.GetCustomAttribute<FunctionAttribute>()!.Name, Trigger: p.GetCustomAttribute<QueueTriggerAttribute>())))
            .Where(x => x.Trigger is not null)
            .ToDictionary(x => x.Function, x => x.Trigger!.Connection);

        Assert.Equal(["Deliverer", "Finalizer", "Inbox"], triggers.Keys.Order());
        // not "Storage": the runtime tries AzureWebJobs<name> first, and AzureWebJobsStorage is the host storage connection
        Assert.All(triggers.Values, connection => Assert.Equal("ControlQueues", connection));
    }
}

namespace VicunaBatch.Core.Ports;

/// <summary>
/// The work queue of each model a deployment serves: a job's shards go to its model's queue, and that model's workers
/// drain it (a SQLite queue per model in a data folder, a Service Bus queue per model on Azure).
/// </summary>
public interface IWorkQueues
{
    /// <summary>The queue of <paramref name="model"/>, one of the <c>ServedModels</c>.</summary>
    IWorkQueue Of(string model);
}

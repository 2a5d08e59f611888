using VicunaBatch.Core.Jobs;

namespace VicunaBatch.Core.Ports;

/// <summary>Runs a submitted job to a terminal status: locally by draining the engine, elsewhere by waiting for the
/// workers. May return the job still running (a host that waits only so long); the run then resumes later.</summary>
public interface IJobDriver
{
    Task<BatchJob> RunToEndAsync(BatchJob job, CancellationToken cancellationToken = default);
}

using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Core.Ports;

/// <summary>Runs one request (the LLM engine). Must allow many concurrent calls; throw
/// <see cref="OperationCanceledException"/> only for cancellation.</summary>
public interface IRequestExecutor
{
    Task<RequestOutcome> ExecuteAsync(BatchRequest request, CancellationToken cancellationToken = default);
}

using Microsoft.Azure.Functions.Worker;
using VicunaBatch.Core.ControlPlane;

namespace VicunaBatch.Functions;

/// <summary>
/// Every 5 minutes, <see cref="FileSweeper.SweepAsync"/>: files past their <c>expires_at</c> are removed with their
/// blobs, and the content of a deleted or expired file is deleted once no running batch reads it.
/// </summary>
public sealed class FileSweepFunction(FileSweeper sweeper)
{
    public const string Schedule = "30 */5 * * * *";

    [Function("FileSweep")]
    public Task<FileSweepResult> RunAsync([TimerTrigger(Schedule)] TimerInfo timer, CancellationToken cancellationToken) =>
        sweeper.SweepAsync(cancellationToken);
}

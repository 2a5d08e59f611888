using Microsoft.Extensions.Logging;

namespace VicunaBatch.Core.ControlPlane;

/// <summary>The one timer loop of a one-machine host's sweeps (<see cref="JobSweeper"/>, <see cref="FileSweeper"/>); the
/// Functions app runs the same sweeps on its timer triggers instead.</summary>
internal static class SweepTimer
{
    /// <summary>Runs <paramref name="sweep"/> now (what an earlier process left unfinished), then every
    /// <paramref name="interval"/>, until cancelled; a failed sweep is logged as "sweeping {<paramref name="what"/>} failed"
    /// and the next one runs on time.</summary>
    public static async Task RunAsync(
        Func<CancellationToken, Task> sweep, string what, TimeSpan interval, TimeProvider time, ILogger logger, CancellationToken cancellationToken = default)
    {
        try
        {
            while (true)
            {
                try { await sweep(cancellationToken); }
                catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "sweeping {What} failed", what); }
                await Task.Delay(interval, time, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { }
    }
}

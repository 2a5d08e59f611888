using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.ControlPlane;

/// <summary>What one file sweep did: files it expired, and removals left pending (content a batch held, or a process
/// that stopped in a removal) that it finished.</summary>
public sealed record FileSweepResult(int NumExpired, int NumRemovalsFinished);

/// <summary>
/// The files' sweep (the Functions timer; a loop in <c>serve</c>): removes every file past its <c>expires_at</c>
/// (<see cref="FileCatalog.ExpireDueAsync"/>; such a file already reads as missing), then finishes each removal still
/// pending: a hold whose batch has ended (or whose create failed) is released, and a file no batch holds loses its
/// content. So a deleted or expired file's content lives exactly as long as the batches that read it.
/// </summary>
public sealed class FileSweeper(FileCatalog files, TenantBatches batches, IJobStore jobs, TimeProvider time, ILogger<FileSweeper>? logger = null)
{
    /// <summary>How long a batch's record may be without its job before its create counts as failed (a create takes seconds).</summary>
    public static readonly TimeSpan CreateGrace = TimeSpan.FromHours(1);

    private readonly ILogger _logger = logger ?? (ILogger)NullLogger.Instance;

    public async Task<FileSweepResult> SweepAsync(CancellationToken cancellationToken = default)
    {
        int numExpired = await files.ExpireDueAsync(cancellationToken);
        int numFinished = 0;
        var pending = new List<string>();
        await foreach (var fileId in files.PendingRemovalsAsync(cancellationToken)) pending.Add(fileId);
        foreach (var fileId in pending)
        {
            var holders = new List<string>();
            await foreach (var holder in files.HoldersAsync(fileId, cancellationToken)) holders.Add(holder);
            foreach (var holder in holders)
                if (await HasEndedAsync(holder, cancellationToken)) await files.ReleaseHoldAsync(fileId, holder, cancellationToken);
            if (await files.TryFinishRemovalAsync(fileId, cancellationToken)) numFinished++;
        }
        if (numExpired > 0 || numFinished > 0)
            _logger.LogInformation("files: {NumExpired} expired, {NumFinished} removals finished", numExpired, numFinished);
        return new FileSweepResult(numExpired, numFinished);
    }

    /// <summary>The holder (a job id) no longer reads its input: its job is terminal, or its create failed.</summary>
    private async Task<bool> HasEndedAsync(string jobId, CancellationToken cancellationToken)
    {
        if (!JobIds.IsValid(jobId)) return true;
        if (await jobs.GetAsync(jobId, cancellationToken) is { } stored) return JobStateMachine.IsTerminal(stored.Job.Status);
        return await batches.ReadRecordAsync(jobId, cancellationToken) is not { } record
            || record.CreatedAt + (long)CreateGrace.TotalSeconds < time.GetUtcNow().ToUnixTimeSeconds();
    }

    /// <summary>A one-machine host's timer (<see cref="SweepTimer"/>): a sweep now, then every <paramref name="interval"/>, until cancelled.</summary>
    public Task RunAsync(TimeSpan interval, CancellationToken cancellationToken = default) =>
        SweepTimer.RunAsync(SweepAsync, "files", interval, time, _logger, cancellationToken);
}

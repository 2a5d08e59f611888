using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VicunaBatch.Core.Batches;

namespace VicunaBatch.Api;

/// <summary>
/// Moves each configured key's batches and files from the unkeyed id earlier versions gave it to its keyed id
/// (<see cref="TenantIds"/>, <see cref="TenantRename"/>), once per process: at the host's start (a hosted service, which
/// the host awaits before it starts the services registered after it) or at the first request, whichever comes first.
/// Every authenticated request waits for it, so no one sees a tenant half moved. A run that failed (the store
/// unreachable, say) fails the start and the requests waiting; the next request runs it again, and it finishes what the
/// failed run began. Logs counts, never ids.
/// </summary>
public sealed class TenantMigration(ApiOptions options, TenantIds ids, TenantRename rename, ILogger<TenantMigration> logger) : IHostedService
{
    private readonly Lock _lock = new();
    private Task? _run;

    /// <summary>Completes when the migration has (at once after the first time).</summary>
    public Task WaitAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            if (_run is null || _run.IsFaulted || _run.IsCanceled) _run = RunAsync();
            return _run.WaitAsync(cancellationToken);
        }
    }

    Task IHostedService.StartAsync(CancellationToken cancellationToken) => WaitAsync(cancellationToken);

    Task IHostedService.StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task RunAsync()
    {
        await Task.Yield(); // not under the lock
        var result = await rename.RunAsync(options.ApiKeys.Select(key => new TenantRenaming(TenantIds.Unkeyed(key), ids.Of(key))));
        if (result.NumTenants > 0)
        {
            logger.LogInformation("tenant ids keyed with the installation's tenant key: {NumTenants} API keys, {NumBatches} batches and {NumFiles} files moved from the unkeyed ids",
                result.NumTenants, result.NumBatches, result.NumFiles);
        }
    }
}

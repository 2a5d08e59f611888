using VicunaBatch.Core.Files;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Batches;

/// <summary>A tenant id to replace: every batch and file of <see cref="From"/> becomes <see cref="To"/>'s.</summary>
public sealed record TenantRenaming(string From, string To);

/// <summary>How much a <see cref="TenantRename"/> moved.</summary>
public sealed record TenantRenameResult(int NumTenants, int NumBatches, int NumFiles);

/// <summary>
/// Gives tenants new ids, keeping every batch and file reachable by its owner: the step that moved tenants from the
/// unkeyed hash of their key to a keyed one (the Api's <c>TenantIds</c>). Once per renaming: the marker
/// <c>tenants/{to}/renamed</c>, written last, says it is done, so later starts read one blob per key. Until then, in this
/// order, each step idempotent, so a process that dies anywhere leaves what the next run finishes:
/// <list type="number">
/// <item>each batch of <c>from</c> (<see cref="TenantBatches.RenameOwnerAsync"/>): its record names <c>to</c>, its index entry is made under <c>to</c>, the old entry deleted;</item>
/// <item>one pass over every file for all renamings at once (<see cref="FileCatalog.RenameOwnersAsync"/>): each file of a <c>from</c> becomes its <c>to</c>'s;</item>
/// <item>the markers.</item>
/// </list>
/// Nothing of <c>from</c> is left: no blob name, no owner field (a folder store prunes the folders a delete leaves empty).
/// </summary>
public sealed class TenantRename(IBlobStore blobs, TenantBatches batches, FileCatalog files)
{
    public static string DoneBlob(string tenant) => $"tenants/{tenant}/renamed";

    public async Task<TenantRenameResult> RunAsync(IEnumerable<TenantRenaming> renamings, CancellationToken cancellationToken = default)
    {
        var pending = new List<TenantRenaming>();
        foreach (var renaming in renamings.DistinctBy(r => r.From))
        {
            if (renaming.From != renaming.To && !await blobs.ExistsAsync(DoneBlob(renaming.To), cancellationToken)) pending.Add(renaming);
        }
        if (pending.Count == 0) return new TenantRenameResult(0, 0, 0);
        int numBatches = 0;
        foreach (var renaming in pending) numBatches += await batches.RenameOwnerAsync(renaming.From, renaming.To, cancellationToken);
        var numFiles = await files.RenameOwnersAsync(pending.ToDictionary(r => r.From, r => r.To), cancellationToken);
        foreach (var renaming in pending) await blobs.PutBytesAsync(DoneBlob(renaming.To), [], BlobCondition.None, cancellationToken);
        return new TenantRenameResult(pending.Count, numBatches, numFiles);
    }
}

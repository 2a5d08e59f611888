using System.Runtime.CompilerServices;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Services;

/// <summary>A job folder as the listing sees it: its number of shard reports, and whether its ending was announced
/// (<see cref="JobIds.AnnouncedBlob"/>: the job ended and its event is in the outbox).</summary>
public sealed record ListedJob(string JobId, int NumReports, bool IsAnnounced);

/// <summary>The jobs of a blob store, read off its blob names (<see cref="JobIds"/>' layout) in one ordinal listing.</summary>
public static class JobListing
{
    /// <summary>Every job folder that holds a <c>job.json</c>.</summary>
    public static async IAsyncEnumerable<ListedJob> ListAsync(IBlobStore blobs, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        const string prefix = JobIds.JobsPrefix;
        string? current = null;
        bool hasJob = false, isAnnounced = false;
        int numReports = 0;
        await foreach (var name in blobs.ListAsync(prefix, cancellationToken))
        {
            int slash = name.IndexOf('/', prefix.Length);
            if (slash < 0) continue;
            var jobId = name[prefix.Length..slash];
            if (jobId != current)
            {
                if (current is not null && hasJob && JobIds.IsValid(current)) yield return new ListedJob(current, numReports, isAnnounced);
                (current, hasJob, isAnnounced, numReports) = (jobId, false, false, 0);
            }
            var rest = name[(slash + 1)..];
            if (rest == "job.json") hasJob = true;
            else if (rest == "announced") isAnnounced = true;
            else if (rest.StartsWith("shards/", StringComparison.Ordinal)) numReports++;
        }
        if (current is not null && hasJob && JobIds.IsValid(current)) yield return new ListedJob(current, numReports, isAnnounced);
    }
}

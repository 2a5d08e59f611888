using System.Runtime.CompilerServices;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Services;

/// <summary>The jobs of a blob store, read off its blob names (<see cref="JobIds"/>' layout) in one ordinal listing.</summary>
public static class JobListing
{
    /// <summary>Every job folder that holds a <c>job.json</c>, with its number of shard reports.</summary>
    public static async IAsyncEnumerable<(string JobId, int NumReports)> ListAsync(
        IBlobStore blobs, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        const string prefix = JobIds.JobsPrefix;
        string? current = null;
        bool hasJob = false;
        int numReports = 0;
        await foreach (var name in blobs.ListAsync(prefix, cancellationToken))
        {
            int slash = name.IndexOf('/', prefix.Length);
            if (slash < 0) continue;
            var jobId = name[prefix.Length..slash];
            if (jobId != current)
            {
                if (current is not null && hasJob && JobIds.IsValid(current)) yield return (current, numReports);
                (current, hasJob, numReports) = (jobId, false, 0);
            }
            var rest = name[(slash + 1)..];
            if (rest == "job.json") hasJob = true;
            else if (rest.StartsWith("shards/", StringComparison.Ordinal)) numReports++;
        }
        if (current is not null && hasJob && JobIds.IsValid(current)) yield return (current, numReports);
    }
}

using VicunaBatch.Core.Jobs;

namespace VicunaBatch.Core.Ports;

/// <summary>A job with the version tag to pass to the next save.</summary>
public sealed record StoredJob(BatchJob Job, string ETag);

/// <summary>Job documents with optimistic concurrency.</summary>
public interface IJobStore
{
    Task<StoredJob?> GetAsync(string jobId, CancellationToken cancellationToken = default);

    /// <summary>Saves the job if its stored version is still <paramref name="expectedETag"/>
    /// (null: only if no job with this id exists); returns the new ETag. Throws
    /// <see cref="JobStoreException"/> with <see cref="JobStoreFailure.Conflict"/> otherwise.</summary>
    Task<string> SaveAsync(BatchJob job, string? expectedETag, CancellationToken cancellationToken = default);
}

public enum JobStoreFailure
{
    /// <summary>Someone else saved the job first (or it already exists); re-read and retry.</summary>
    Conflict,
    Unavailable,
}

public sealed class JobStoreException(JobStoreFailure reason, string jobId, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public JobStoreFailure Reason { get; } = reason;
    public string JobId { get; } = jobId;
    public bool IsTransient => Reason == JobStoreFailure.Unavailable;
}

using System.Text.Json;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Services;

/// <summary><see cref="IJobStore"/> on any <see cref="IBlobStore"/>: <c>jobs/{id}/job.json</c>, blob ETag as version.</summary>
public sealed class BlobJobStore(IBlobStore blobs) : IJobStore
{
    private const int MaxReadAttempts = 5;

    public async Task<StoredJob?> GetAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var name = JobIds.JobBlob(JobIds.Validate(jobId));
        for (int attempt = 0; attempt < MaxReadAttempts; attempt++)
        {
            var before = await blobs.GetPropertiesAsync(name, cancellationToken);
            if (before is null) return null;
            byte[] content;
            try { content = await blobs.ReadBytesAsync(name, cancellationToken); }
            catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.NotFound) { return null; }
            var after = await blobs.GetPropertiesAsync(name, cancellationToken);
            if (after?.ETag == before.ETag)
                return new StoredJob(JsonSerializer.Deserialize<BatchJob>(content, JobsJson.Options)!, before.ETag);
        }
        throw new JobStoreException(JobStoreFailure.Unavailable, jobId, $"job {jobId} kept changing while being read");
    }

    public async Task<string> SaveAsync(BatchJob job, string? expectedETag, CancellationToken cancellationToken = default)
    {
        var content = JsonSerializer.SerializeToUtf8Bytes(job, JobsJson.Indented);
        var condition = expectedETag is null ? BlobCondition.IfNotExists : BlobCondition.IfMatch(expectedETag);
        try
        {
            var properties = await blobs.PutBytesAsync(JobIds.JobBlob(JobIds.Validate(job.Id)), content, condition, cancellationToken);
            return properties.ETag;
        }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed)
        {
            throw new JobStoreException(JobStoreFailure.Conflict, job.Id,
                expectedETag is null ? $"job {job.Id} already exists" : $"job {job.Id} was changed by someone else", e);
        }
        catch (BlobStoreException e) when (e.IsTransient)
        {
            throw new JobStoreException(JobStoreFailure.Unavailable, job.Id, $"job store unavailable: {e.Message}", e);
        }
    }
}

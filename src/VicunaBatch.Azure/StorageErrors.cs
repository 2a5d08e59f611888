using Azure.Identity;
using Azure;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Azure;

/// <summary>
/// Maps Azure Storage failures onto the port exceptions. Transient: no answer (status 0), 408, 429, 5xx, and
/// 401/403 too — role assignments take minutes to reach the data plane after a deployment, so an access
/// failure right after one heals by itself; the message names the status and error code so a missing role
/// is still plain in the logs (the poison queues stop the retries).
/// </summary>
internal static class StorageErrors
{
    public static bool IsNotFound(RequestFailedException e) => e.Status == 404;

    public static bool IsConditionFailed(RequestFailedException e) =>
        e.Status == 412 || (e.Status == 409 && e.ErrorCode is "BlobAlreadyExists" or "LeaseIdMissing" or "TargetConditionNotMet");

    public static string Describe(RequestFailedException e) => $"HTTP {e.Status} {e.ErrorCode ?? "(no error code)"}";

    /// <summary>The blob-store exception for a failure that is not an expected answer (404, condition failed).</summary>
    public static BlobStoreException Blob(Exception e, string name, string verb) => e switch
    {
        RequestFailedException { Status: 400, ErrorCode: "InvalidResourceName" or "InvalidUri" or "OutOfRangeInput" } r =>
            new BlobStoreException(BlobStoreFailure.InvalidName, name, $"invalid blob name \"{name}\": {Describe(r)}", e),
        RequestFailedException r =>
            new BlobStoreException(BlobStoreFailure.Unavailable, name, $"could not {verb} blob {name}: {Describe(r)}: {FirstLine(r.Message)}", e),
        AggregateException retries => new BlobStoreException(BlobStoreFailure.Unavailable, name,
            $"could not {verb} blob {name}: {retries.InnerExceptions.Count} tries failed, the last: {FirstLine(retries.InnerExceptions[^1].Message)}", e),
        _ => new BlobStoreException(BlobStoreFailure.Unavailable, name, $"could not {verb} blob {name}: {e.Message}", e),
    };

    /// <summary>True for the exceptions a storage call fails with (service answers, transport, identity) — and the
    /// SDK's <see cref="AggregateException"/> "Retry failed after N tries" that wraps them once its retries run out.</summary>
    public static bool IsStorageFailure(Exception e) => e is RequestFailedException or AuthenticationFailedException or CredentialUnavailableException
        or IOException or HttpRequestException
        || (e is AggregateException { InnerExceptions.Count: > 0 } all && all.InnerExceptions.All(IsStorageFailure));

    public static string FirstLine(string message)
    {
        int end = message.IndexOf('\n');
        return (end < 0 ? message : message[..end]).Trim();
    }
}

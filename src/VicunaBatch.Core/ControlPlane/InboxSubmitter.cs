using System.Security.Cryptography;
using System.Text;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Core.ControlPlane;

/// <summary>Options of <see cref="InboxSubmitter"/>.</summary>
public sealed class InboxOptions
{
    /// <summary>Time until <c>expires_at</c> of an inbox job. Default 24 hours.</summary>
    public TimeSpan CompletionWindow { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Webhook of every inbox job (its events: all terminal ones; signed with the deliverer's secret). Default none.</summary>
    public string? WebhookUrl { get; set; }

    public void Validate()
    {
        if (CompletionWindow < TimeSpan.FromHours(1)) throw new ArgumentOutOfRangeException(nameof(CompletionWindow), CompletionWindow, "must be at least 1 hour");
        if (WebhookUrl is not null && !Uri.TryCreate(WebhookUrl, UriKind.Absolute, out _)) throw new ArgumentException($"Inbox:WebhookUrl \"{WebhookUrl}\" is not an absolute URL");
    }
}

/// <summary>
/// A file dropped in the inbox (port name <c>inbox/{name}</c>) becomes a job. The job id comes from the name and
/// the blob's ETag, so a retried trigger finds the same job (JobSubmitter is idempotent per id) and a new version
/// of the same name is a new job. The content is first copied, create-only, to <c>files/{jobId}/content.*</c>:
/// the job reads an input nobody overwrites, in the container the workers may read. A job that ended at submit (a model
/// nobody serves, an empty file) or has nothing to run is settled at once (<see cref="JobSettler.SettleSubmittedAsync"/>),
/// so its webhook hears of it as of any ending.
/// </summary>
public sealed class InboxSubmitter(IBlobStore blobs, JobSubmitter submitter, JobSettler settler, InboxOptions options)
{
    public const string Prefix = "inbox/";

    public static string JobIdFor(string name, string etag) =>
        "inbox_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{name}\n{etag}")))[..32];

    /// <summary>Submits the inbox blob <paramref name="name"/> (without the <c>inbox/</c> prefix); null when it is gone.</summary>
    public async Task<BatchJob?> SubmitAsync(string name, CancellationToken cancellationToken = default)
    {
        var source = Prefix + name;
        if (await blobs.GetPropertiesAsync(source, cancellationToken) is not { } properties) return null;
        var jobId = JobIdFor(name, properties.ETag);
        var format = InputOptions.FormatFromName(name);
        var input = $"files/{jobId}/content{(format == InputFormat.Text ? ".txt" : ".jsonl")}";
        if (!await blobs.ExistsAsync(input, cancellationToken))
        {
            await using var content = await blobs.OpenReadAsync(source, null, cancellationToken);
            try { await blobs.PutAsync(input, content, BlobCondition.IfNotExists, cancellationToken); }
            catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed) { } // a concurrent retry copied it
        }
        var job = await submitter.SubmitAsync(new JobSubmission(input)
        {
            JobId = jobId, Format = format, CompletionWindow = options.CompletionWindow,
            Metadata = new Dictionary<string, string> { ["inbox_blob"] = name, ["inbox_etag"] = properties.ETag },
            Webhook = options.WebhookUrl is { } url ? new WebhookSettings(url, []) : null,
        }, cancellationToken);
        return await settler.SettleSubmittedAsync(job, cancellationToken);
    }
}

namespace VicunaBatch.Core.Webhooks;

/// <summary>Where the deliverer finds the secret that signs one job's events.</summary>
public interface IWebhookSecrets
{
    /// <summary>The job's own <c>whsec_…</c> secret; null when it has none (the deliverer's signing secret signs it). Never log it.</summary>
    Task<string?> FindAsync(string jobId, CancellationToken cancellationToken = default);
}

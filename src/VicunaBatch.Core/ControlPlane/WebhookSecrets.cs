using VicunaBatch.Core.Batches;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Core.ControlPlane;

/// <summary>
/// The one source of the secret that signs a job's events: a pipeline run's with its pipeline's secret (the definition
/// kept in the blob store, <see cref="PipelineDefinitionStore"/>), a batch's with the secret its creator set or was
/// given (<see cref="TenantBatches.GetWebhookSecretAsync"/>); anything else with the deliverer's own signing secret.
/// </summary>
public sealed class WebhookSecrets(PipelineDefinitionStore pipelines, TenantBatches batches) : IWebhookSecrets
{
    public async Task<string?> FindAsync(string jobId, CancellationToken cancellationToken = default) =>
        await pipelines.WebhookSecretOfRunAsync(jobId, cancellationToken) ?? await batches.GetWebhookSecretAsync(jobId, cancellationToken);
}

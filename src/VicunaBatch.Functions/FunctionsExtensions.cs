using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Api;
using VicunaBatch.Azure;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Functions;

/// <summary>Wiring of the Function App: the same Api, finalizer, outbox and deliverer as <c>vicuna-batch serve</c>, on the Azure parts.</summary>
public static class FunctionsExtensions
{
    /// <summary>
    /// Registers <see cref="AzureTransportExtensions.AddAzureTransport"/> (blobs, checkpoints, job store, the Service Bus
    /// work queue, the control-plane Storage queues), the Api (<see cref="BatchApi"/>), <see cref="JobSubmitter"/>,
    /// <see cref="JobFinalizer"/>, <see cref="JobSettler"/> with the <see cref="WebhookOutbox"/> on the
    /// webhook-deliveries queue, <see cref="WebhookDeliverer"/>, <see cref="JobSweeper"/>, <see cref="InboxSubmitter"/>, the
    /// <see cref="InboxAddress"/> of the inbox trigger (the storage account and its inbox container) and the pipelines
    /// timer's <see cref="PipelineTicks"/>.
    /// Throws <see cref="ArgumentException"/> at once on a missing or bad setting (<see cref="FunctionsOptions"/>).
    /// </summary>
    public static IServiceCollection AddVicunaBatchFunctions(this IServiceCollection services, IConfiguration configuration)
    {
        var options = FunctionsOptions.From(configuration);
        options.Validate();
        services.AddSingleton(options);
        services.AddAzureTransport(configuration);
        services.AddSingleton(options.Input);
        services.AddSingleton(sp => new JobSubmitter(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IJobStore>(),
            sp.GetRequiredService<IWorkQueue>(), options.Input, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new JobFinalizer(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IJobStore>(),
            sp.GetRequiredService<ICheckpointStore>(), options.Input, sp.GetRequiredService<TimeProvider>()));
        // Functions has no tokenizer: validate reports no prompt token counts (the worker still refuses over-long prompts)
        services.AddVicunaBatchApi(api =>
        {
            api.ApiKeys.AddRange(options.ApiKeys);
            api.AllowLoopbackWebhooks = options.AllowLoopbackWebhooks;
        });

        services.AddSingleton(sp => new WebhookOutbox(sp.GetRequiredService<ControlPlaneQueues>().WebhookDeliveries));
        services.AddSingleton(sp => new JobSettler(sp.GetRequiredService<JobFinalizer>(), sp.GetRequiredService<TenantBatches>(),
            sp.GetRequiredService<FileCatalog>(), sp.GetRequiredService<WebhookOutbox>()));
        services.AddSingleton(sp => new JobSweeper(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IJobStore>(),
            sp.GetRequiredService<JobSettler>(), sp.GetRequiredService<ControlPlaneQueues>().ShardDone, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new InboxSubmitter(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<JobSubmitter>(),
            sp.GetRequiredService<JobSettler>(), options.Inbox));
        services.AddSingleton(sp => new InboxAddress(sp.GetRequiredService<BlobServiceClient>().AccountName,
            sp.GetRequiredService<AzureTransportOptions>().Storage.Containers.Inbox));
        services.AddSingleton(sp => new PipelineTicks(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IJobStore>(),
            sp.GetRequiredService<JobSubmitter>(), sp.GetRequiredService<WebhookOutbox>(), sp.GetRequiredService<BlobServiceClient>(),
            options, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp =>
        {
            var policy = new WebhookUrlPolicy(new WebhookUrlPolicyOptions { AllowHttp = options.AllowLoopbackWebhooks, AllowLoopback = options.AllowLoopbackWebhooks });
            return new WebhookDeliverer(sp.GetRequiredService<ControlPlaneQueues>().WebhookDeliveries, sp.GetRequiredService<IBlobStore>(),
                new HttpClient(WebhookHttp.CreateHandler(policy)), policy,
                options.DelivererOptions(async (id, ct) =>
                    // a pipeline run's events are signed with their pipeline's secret, batch jobs' with their tenant's
                    await new PipelineDefinitionStore(sp.GetRequiredService<IBlobStore>()).WebhookSecretOfRunAsync(id, ct)
                    ?? await sp.GetRequiredService<TenantBatches>().GetWebhookSecretAsync(id, ct)),
                sp.GetRequiredService<TimeProvider>());
        });
        return services;
    }
}

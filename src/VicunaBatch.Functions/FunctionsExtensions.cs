using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Api;
using VicunaBatch.Azure;
using VicunaBatch.Core;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Functions;

/// <summary>Wiring of the Function App: the same Core and Api as <c>vicuna-batch serve</c>, on the Azure parts.</summary>
public static class FunctionsExtensions
{
    /// <summary>
    /// Registers <see cref="AzureTransportExtensions.AddAzureTransport"/> (blobs, checkpoints, job store, the Service Bus
    /// work queue, the control-plane Storage queues), <see cref="CoreServiceCollectionExtensions.AddVicunaBatchCore"/>
    /// with the app's settings, the Api (<see cref="BatchApi"/>), the <see cref="InboxAddress"/> of the inbox trigger (the
    /// storage account and its inbox container) and the pipelines timer's <see cref="PipelineTicks"/>.
    /// Throws <see cref="ArgumentException"/> at once on a missing or bad setting (<see cref="FunctionsOptions"/>).
    /// </summary>
    public static IServiceCollection AddVicunaBatchFunctions(this IServiceCollection services, IConfiguration configuration)
    {
        var options = FunctionsOptions.From(configuration);
        options.Validate();
        services.AddSingleton(options);
        services.AddAzureTransport(configuration);
        services.AddVicunaBatchCore(core =>
        {
            core.Input = options.Input;
            core.Models = options.Models;
            core.Webhooks = options.DelivererOptions();
            core.WebhookUrls = new WebhookUrlPolicyOptions { AllowHttp = options.AllowLoopbackWebhooks, AllowLoopback = options.AllowLoopbackWebhooks };
            core.Inbox = options.Inbox;
        });
        // Functions has no tokenizer: validate reports no prompt token counts (the worker still refuses over-long prompts)
        services.AddVicunaBatchApi(api =>
        {
            api.ApiKeys.AddRange(options.ApiKeys);
            api.MaxUploadBytes = options.MaxUploadBytes;
            api.TenantKey = options.TenantKey;
            api.AllowLoopbackWebhooks = options.AllowLoopbackWebhooks;
        });
        services.AddSingleton(sp => new InboxAddress(sp.GetRequiredService<BlobServiceClient>().AccountName,
            sp.GetRequiredService<AzureTransportOptions>().Storage.Containers.Inbox));
        services.AddSingleton(sp => new PipelineTicks(sp.GetRequiredService<PipelineRuns>(), sp.GetRequiredService<PipelineDefinitionStore>(),
            sp.GetRequiredService<BlobServiceClient>(), options));
        return services;
    }
}

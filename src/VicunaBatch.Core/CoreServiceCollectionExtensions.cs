using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Core;

/// <summary>The composition root of Core: every host (serve, run, pipeline run, the Functions app) gets its services here.</summary>
public static class CoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers the Core services over the ports a transport registered (<c>AddLocalTransport</c> or
    /// <c>AddAzureTransport</c>: <see cref="IBlobStore"/>, <see cref="ICheckpointStore"/>, <see cref="IJobStore"/>, the
    /// models' <see cref="IWorkQueues"/>, <see cref="ControlQueues"/>): the <see cref="ServedModels"/>, <see cref="JobSubmitter"/>, <see cref="JobFinalizer"/>,
    /// the tenants' <see cref="FileCatalog"/> and <see cref="TenantBatches"/> (and their <see cref="TenantRename"/>), the <see cref="InputDryRun"/>, <see cref="JobSettler"/> with the
    /// <see cref="WebhookOutbox"/>, <see cref="ShardDoneHandler"/>, <see cref="JobSweeper"/>, <see cref="FileSweeper"/>, <see cref="InboxSubmitter"/>,
    /// <see cref="PipelineDefinitionStore"/> and <see cref="PipelineRuns"/>, the one webhook-secret source (<see cref="WebhookSecrets"/>) and the
    /// <see cref="WebhookDeliverer"/>; <see cref="TimeProvider.System"/> unless the host registered a clock, and no logging
    /// unless it registered some. Throws
    /// <see cref="ArgumentException"/> at once on a bad option.
    /// </summary>
    public static IServiceCollection AddVicunaBatchCore(this IServiceCollection services, Action<CoreOptions> configure)
    {
        var options = new CoreOptions();
        configure(options);
        options.Validate();
        services.AddSingleton(options);
        services.AddSingleton(options.Input);
        services.AddSingleton(new ServedModels(options.Models));
        services.TryAddSingleton(TimeProvider.System);
        // a host without logging (run, pipeline run) logs nothing; the hosts with a console keep theirs
        services.TryAddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.TryAdd(ServiceDescriptor.Singleton(typeof(ILogger<>), typeof(Logger<>)));

        services.AddSingleton(sp => new JobSubmitter(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IJobStore>(),
            sp.GetRequiredService<IWorkQueues>(), sp.GetRequiredService<ServedModels>(), options.Input, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new JobFinalizer(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IJobStore>(),
            sp.GetRequiredService<ICheckpointStore>(), options.Input, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new FileCatalog(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new TenantBatches(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IJobStore>(),
            sp.GetRequiredService<JobSubmitter>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new TenantRename(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<TenantBatches>(), sp.GetRequiredService<FileCatalog>()));
        // a host with the model's tokenizer registers an IPromptTokenCounter: the dry run then counts prompt tokens
        services.AddSingleton(sp => new InputDryRun(options.Input, sp.GetService<IPromptTokenCounter>()));

        services.AddSingleton(sp => new WebhookOutbox(sp.GetRequiredService<ControlQueues>().WebhookDeliveries));
        services.AddSingleton(sp => new JobSettler(sp.GetRequiredService<JobFinalizer>(), sp.GetRequiredService<TenantBatches>(),
            sp.GetRequiredService<FileCatalog>(), sp.GetRequiredService<WebhookOutbox>(), sp.GetRequiredService<IBlobStore>()));
        services.AddSingleton(sp => new ShardDoneHandler(sp.GetRequiredService<JobSettler>(), sp.GetRequiredService<ILogger<ShardDoneHandler>>(), options.ShardDone));
        services.AddSingleton(sp => new JobSweeper(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IJobStore>(), sp.GetRequiredService<JobSettler>(),
            sp.GetRequiredService<ControlQueues>().ShardDone, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<JobSweeper>>()));
        services.AddSingleton(sp => new FileSweeper(sp.GetRequiredService<FileCatalog>(), sp.GetRequiredService<TenantBatches>(),
            sp.GetRequiredService<IJobStore>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<FileSweeper>>()));
        services.AddSingleton(sp => new InboxSubmitter(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<JobSubmitter>(),
            sp.GetRequiredService<JobSettler>(), options.Inbox));

        services.AddSingleton(sp => new PipelineDefinitionStore(sp.GetRequiredService<IBlobStore>()));
        services.AddSingleton(sp => new PipelineRuns(sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IJobStore>(),
            sp.GetRequiredService<JobSubmitter>(), sp.GetRequiredService<WebhookOutbox>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IWebhookSecrets>(sp => new WebhookSecrets(sp.GetRequiredService<PipelineDefinitionStore>(), sp.GetRequiredService<TenantBatches>()));
        services.AddSingleton(sp =>
        {
            var webhooks = options.Webhooks ?? throw new InvalidOperationException(
                "this host delivers no webhooks: CoreOptions.Webhooks (the signing secret) was not set");
            var policy = new WebhookUrlPolicy(options.WebhookUrls);
            var logger = sp.GetRequiredService<ILogger<WebhookDeliverer>>();
            return new WebhookDeliverer(sp.GetRequiredService<ControlQueues>().WebhookDeliveries, sp.GetRequiredService<IBlobStore>(),
                new HttpClient(WebhookHttp.CreateHandler(policy)), policy, webhooks, sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<IWebhookSecrets>(), (message, e) => logger.LogWarning(e, "webhook delivery {MessageId} failed", message.MessageId));
        });
        return services;
    }
}

using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Api;

/// <summary>Wiring of the OpenAI-compatible API, shared by the local server and Functions.</summary>
public static class ApiExtensions
{
    /// <summary>
    /// Registers the API's services over Core's (<c>AddVicunaBatchCore</c>: <see cref="FileCatalog"/>,
    /// <see cref="TenantBatches"/>, <see cref="InputDryRun"/>, which counts prompt tokens when the host registered an
    /// <see cref="IPromptTokenCounter"/>). <see cref="BatchApi"/> is the same API for a host that routes requests itself (Functions).
    /// The <see cref="TenantMigration"/> is a hosted service: a host that must not run its other services during it
    /// (they may finalize a tenant's jobs) calls this before it registers them.
    /// </summary>
    public static IServiceCollection AddVicunaBatchApi(this IServiceCollection services, Action<ApiOptions> configure)
    {
        var options = new ApiOptions();
        configure(options);
        options.Validate();
        services.AddSingleton(options);
        services.AddSingleton(new TenantIds(options.TenantKey));
        services.AddSingleton<TenantMigration>();
        services.AddHostedService(sp => sp.GetRequiredService<TenantMigration>());
        services.AddSingleton<ApiKeyFilter>();
        services.AddSingleton(sp => new ApiFaultFilter(sp.GetService<ILogger<ApiFaultFilter>>() ?? NullLogger<ApiFaultFilter>.Instance));
        services.AddSingleton<BatchObjects>();
        services.AddSingleton(sp => new ModelHandlers(sp.GetRequiredService<ServedModels>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new BatchApi(sp.GetRequiredService<ApiKeyFilter>(), sp.GetRequiredService<ApiFaultFilter>(),
            sp.GetRequiredService<FileCatalog>(), sp.GetRequiredService<TenantBatches>(), sp.GetRequiredService<InputDryRun>(),
            sp.GetRequiredService<BatchObjects>(), sp.GetRequiredService<ModelHandlers>(), options));
        return services;
    }

    /// <summary>Maps <c>/v1/files…</c>, <c>/v1/batches…</c> and <c>/v1/models…</c>, all behind bearer-key authentication and
    /// <see cref="ApiFaultFilter"/> (what a handler throws is answered in OpenAI's error shape).</summary>
    public static RouteGroupBuilder MapVicunaBatchApi(this IEndpointRouteBuilder endpoints)
    {
        var v1 = endpoints.MapGroup("/v1");
        v1.AddEndpointFilter(endpoints.ServiceProvider.GetRequiredService<ApiFaultFilter>()); // outermost: added first
        v1.AddEndpointFilter<ApiKeyFilter>();
        v1.MapPost("/files", FileHandlers.UploadAsync).DisableAntiforgery();
        v1.MapGet("/files", FileHandlers.ListAsync);
        v1.MapGet("/files/{fileId}", FileHandlers.GetAsync);
        v1.MapDelete("/files/{fileId}", FileHandlers.DeleteAsync);
        v1.MapGet("/files/{fileId}/content", FileHandlers.GetContentAsync);
        v1.MapPost("/batches", BatchHandlers.CreateAsync);
        v1.MapGet("/batches", BatchHandlers.ListAsync);
        v1.MapPost("/batches/validate", ValidateHandler.ValidateAsync).DisableAntiforgery();
        v1.MapGet("/batches/{batchId}", BatchHandlers.GetAsync);
        v1.MapPost("/batches/{batchId}/cancel", BatchHandlers.CancelAsync);
        v1.MapGet("/models", (ModelHandlers models) => models.List());
        v1.MapGet("/models/{modelId}", (string modelId, ModelHandlers models) => models.Get(modelId));
        v1.MapDelete("/models/{modelId}", (string modelId, ModelHandlers models) => models.Delete(modelId));
        v1.Map("/{**path}", (HttpContext context) =>
            ApiErrors.Error(StatusCodes.Status404NotFound, $"Unknown request URL: {context.Request.Method} {context.Request.Path}.", "unknown_url"));
        return v1;
    }
}

using Azure.Monitor.OpenTelemetry.Exporter;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace VicunaBatch.Worker;

/// <summary>
/// Exports <see cref="WorkerMetrics"/> with OpenTelemetry where configuration names a backend: OTLP when
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (the standard OTEL_* variables apply: protocol, headers, interval),
/// Azure Monitor when <c>APPLICATIONINSIGHTS_CONNECTION_STRING</c> is (as infra sets it, with the worker's managed
/// identity). With neither, the meter still feeds in-process listeners (tests, dotnet-counters).
/// </summary>
public static class WorkerTelemetry
{
    public static IServiceCollection AddWorkerTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        var otlp = configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        var appInsights = configuration["APPLICATIONINSIGHTS_CONNECTION_STRING"];
        if (string.IsNullOrEmpty(otlp) && string.IsNullOrEmpty(appInsights)) return services;
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("vicuna-worker"))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(WorkerMetrics.MeterName);
                if (!string.IsNullOrEmpty(otlp)) metrics.AddOtlpExporter();
                if (!string.IsNullOrEmpty(appInsights))
                {
                    metrics.AddAzureMonitorMetricExporter(o =>
                    {
                        o.ConnectionString = appInsights;
                        // Entra ID instead of the instrumentation key (infra sets Authorization=AAD and AZURE_CLIENT_ID)
                        if (configuration["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]?.Contains("Authorization=AAD", StringComparison.OrdinalIgnoreCase) == true)
                            o.Credential = new global::Azure.Identity.DefaultAzureCredential();
                    });
                }
            });
        return services;
    }
}

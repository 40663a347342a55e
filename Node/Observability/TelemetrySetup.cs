using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace ClusterQueue.Node.Observability;

/// <summary>
/// OpenTelemetry for the node: its own meter, the runtime's, ASP.NET Core's, HttpClient's and Npgsql's, exported at
/// /metrics for Prometheus and by OTLP when the standard OTEL_EXPORTER_OTLP_* settings name an endpoint.
/// </summary>
internal static class TelemetrySetup
{
    public static IServiceCollection AddTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        var otlpMetrics = HasEndpoint(configuration, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");

        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(configuration["OTEL_SERVICE_NAME"] is { Length: > 0 } name ? name : "clusterqueue"))
            .WithMetrics(metrics =>
            {
                metrics
                    .AddMeter(NodeMeter.Name)
                    .AddRuntimeInstrumentation()
                    .AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation()
                    .AddNpgsqlInstrumentation()
                    .AddPrometheusExporter(prometheus =>
                    {
                        // Every scrape collects afresh: a cached answer would show a group deleted or paused a moment ago.
                        prometheus.ScrapeResponseCacheDurationMilliseconds = 0;

                        // The series keep the names and labels they had before OpenTelemetry exported them.
                        prometheus.ScopeInfoEnabled = false;
                    });
                if (otlpMetrics)
                {
                    metrics.AddOtlpExporter();
                }
            });
        services.ConfigureOpenTelemetryMeterProvider((provider, metrics) =>
        {
            var limit = NodeMeter.CardinalityLimit(provider.GetRequiredService<IOptions<ObservabilityOptions>>().Value.MaxGroupSeries);
            var own = provider.GetRequiredService<IMeterFactory>();
            metrics.AddView(instrument =>
                instrument.Meter.Name != NodeMeter.Name ? null
                // Another node's in the same process (tests run several): every provider listens by meter name only.
                : instrument.Meter.Scope != own ? MetricStreamConfiguration.Drop
                : NodeMeter.PerGroupInstruments.Contains(instrument.Name) ? new MetricStreamConfiguration { CardinalityLimit = limit }
                : null);
        });
        if (otlpMetrics)
        {
            services.AddHostedService<BacklogRefresher>();
        }

        return services;
    }

    /// <summary>Whether OTLP has somewhere to go for a signal: its own endpoint setting or the common one.</summary>
    internal static bool HasEndpoint(IConfiguration configuration, string signalSetting) =>
        !string.IsNullOrWhiteSpace(configuration[signalSetting]) || !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
}

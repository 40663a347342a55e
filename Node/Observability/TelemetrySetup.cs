using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ClusterQueue.Node.Observability;

/// <summary>
/// OpenTelemetry for the node: its own meter, the runtime's, ASP.NET Core's, HttpClient's and Npgsql's, exported at
/// /metrics for Prometheus and by OTLP when the standard OTEL_EXPORTER_OTLP_* settings name an endpoint; and, when
/// traces are on, its spans (<see cref="MessageTracing"/>) with ASP.NET Core's, HttpClient's and Npgsql's.
/// </summary>
internal static class TelemetrySetup
{
    public static IServiceCollection AddTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        var otlpMetrics = HasEndpoint(configuration, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
        var otlpTraces = HasEndpoint(configuration, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");

        var telemetry = services.AddOpenTelemetry();
        telemetry
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

        // Off, no tracer provider exists: nothing listens, and every span start is a single check that returns null.
        if (configuration.GetValue<bool?>($"{ObservabilityOptions.Section}:{nameof(ObservabilityOptions.Traces)}") ?? otlpTraces)
        {
            telemetry.WithTracing(tracing =>
            {
                tracing
                    .SetSampler(new ParentBasedSampler(new RequestRootSampler()))
                    .AddSource(MessageTracing.SourceName)
                    .AddAspNetCoreInstrumentation(aspNetCore => aspNetCore.Filter = context => !IsProbe(context.Request.Path))
                    .AddHttpClientInstrumentation()
                    .AddNpgsql();
                if (otlpTraces)
                {
                    tracing.AddOtlpExporter();
                }
            });
        }

        return services;
    }

    /// <summary>Scrapes and probes, every few seconds from every scraper and kubelet: a trace each would bury the messages'.</summary>
    private static bool IsProbe(PathString path) =>
        path.StartsWithSegments("/metrics") || path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz");

    /// <summary>Whether OTLP has somewhere to go for a signal: its own endpoint setting or the common one.</summary>
    internal static bool HasEndpoint(IConfiguration configuration, string signalSetting) =>
        !string.IsNullOrWhiteSpace(configuration[signalSetting]) || !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
}

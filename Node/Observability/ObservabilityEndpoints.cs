using System.Diagnostics;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using System.Runtime;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Queueing;
using Microsoft.AspNetCore.Http.HttpResults;

namespace ClusterQueue.Node.Observability;

public static class ObservabilityEndpoints
{
    public static IServiceCollection AddObservability(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ObservabilityOptions>().Bind(configuration.GetSection(ObservabilityOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<NodeMetrics>();
        services.AddSingleton<NodeReadiness>();
        services.AddSingleton<NodeMeter>();
        services.AddTelemetry(configuration);

        // The exporter's endpoint is not a minimal-API handler, so the document would leave /metrics out.
        services.ConfigureAll<OpenApiOptions>(openApi => openApi.AddDocumentTransformer((document, _, _) =>
        {
            document.Paths["/metrics"] = new OpenApiPathItem
            {
                Operations = new Dictionary<HttpMethod, OpenApiOperation>
                {
                    [HttpMethod.Get] = new()
                    {
                        Tags = new HashSet<OpenApiTagReference> { new("Health", document) },
                        Summary = "Prometheus text format (OpenMetrics when asked for), from OpenTelemetry's exporter.",
                        Responses = new OpenApiResponses
                        {
                            ["200"] = new OpenApiResponse
                            {
                                Description = "The node's metrics.",
                                Content = new Dictionary<string, OpenApiMediaType> { ["text/plain"] = new() },
                            },
                        },
                    },
                },
            };
            return Task.CompletedTask;
        }));
        return services;
    }

    public static IEndpointRouteBuilder MapObservability(this IEndpointRouteBuilder endpoints, RouteGroupBuilder admin)
    {
        endpoints.MapGet("/healthz", () => TypedResults.Ok(new { status = "alive" })).WithTags("Health").WithSummary("Liveness: the process is serving requests.");
        endpoints.MapGet("/readyz", Ready).WithTags("Health").WithSummary("Readiness: recovered, joined (in a cluster), not draining, and the store takes writes.");
        MapMetrics(endpoints);
        admin.MapGet("/groups/{id}/stats", StatsAsync).WithTags("Groups").WithSummary("Queue depth, in flight, delivered, failed, dead, throttled and current tokens.");
        admin.MapPost("/debug/gc", CollectGarbage).WithTags("Health").WithSummary("Forces a full compacting collection and answers the live managed heap, for memory measurements.");
        return endpoints;
    }

    /// <summary>
    /// OpenTelemetry's Prometheus exporter, behind a step that reads the backlog per group first (the one part of a
    /// scrape that asks the store), so every scrape shows the backlog as it is and the groups chosen from it.
    /// </summary>
    private static void MapMetrics(IEndpointRouteBuilder endpoints)
    {
        // Created now, not at the first scrape: OTLP exports and the first scrape find its instruments in place.
        var meter = endpoints.ServiceProvider.GetRequiredService<NodeMeter>();
        endpoints.MapPrometheusScrapingEndpoint(
                "/metrics",
                meterProvider: null,
                configureBranchedPipeline: branch => branch.Use(async (context, next) =>
                {
                    await meter.RefreshAsync(context.RequestAborted);
                    await next(context);
                }),
                optionsName: null)
            .WithTags("Health");
    }

    private static Results<Ok<object>, ProblemHttpResult> Ready(NodeReadiness readiness) =>
        readiness.IsReady
            ? TypedResults.Ok<object>(new { status = "ready" })
            : TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Not ready", detail: readiness.NotReadyReason ?? "The node is not ready.");

    /// <summary>
    /// The gauge's heap figure counts garbage not yet collected, up to a whole generation-0 budget (megabytes under the
    /// server GC), which hides a per-group cost of hundreds of bytes; only a forced full collection gives the live size.
    /// It pauses the process, hence a POST behind the admin guard rather than a gauge.
    /// </summary>
    private static Ok<object> CollectGarbage()
    {
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        using var process = Process.GetCurrentProcess();
        return TypedResults.Ok<object>(new { heapBytes = GC.GetTotalMemory(false), workingSetBytes = process.WorkingSet64 });
    }

    private static async Task<Results<Ok<GroupStats>, ProblemHttpResult>> StatsAsync(string id, GroupRegistry registry, IMessageQueue queue, GroupDispatcher dispatcher, CancellationToken cancellationToken)
    {
        if (!registry.TryGet(id, out var settings) || await queue.GetCountsAsync(id, cancellationToken) is not { } counts)
        {
            return GroupProblems.NotFound(id);
        }

        var snapshot = await dispatcher.InspectAsync(id).WaitAsync(cancellationToken);
        return TypedResults.Ok(new GroupStats(
            id,
            Math.Max(0, counts.Queued - (snapshot?.InFlight ?? 0)),
            snapshot?.InFlight ?? 0,
            counts.Ingested,
            counts.Delivered,
            counts.Failed,
            counts.Dead,
            counts.Throttled,
            snapshot?.Tokens ?? settings.Burst,
            settings.RatePerSecond,
            snapshot?.PausedUntil,
            settings.PausedAt is not null,
            settings.PausedAt,
            snapshot?.RatePerSecond ?? settings.RatePerSecond));
    }
}

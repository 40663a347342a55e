using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Processing;

public static class ProcessingSetup
{
    /// <summary>Connections to a downstream are recycled this often so DNS changes (a redeployed target) are picked up.</summary>
    private static readonly TimeSpan ConnectionLifetime = TimeSpan.FromMinutes(2);

    public static IServiceCollection AddProcessing(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ProcessingOptions>().Bind(configuration.GetSection(ProcessingOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IMessageHandler>(provider => new HttpForwardHandler(
            new HttpClient(ForwardingHandler(provider.GetRequiredService<IOptions<ProcessingOptions>>().Value))
            {
                // Each call is bounded by its group's handler timeout instead.
                Timeout = Timeout.InfiniteTimeSpan,
            },
            provider.GetRequiredService<TimeProvider>(),
            provider.GetRequiredService<Cluster.NodeIdentity>().Id,
            provider.GetRequiredService<IOptions<Ingress.IngressOptions>>().Value.MaxResultBytes,
            provider.GetRequiredService<Observability.NodeMetrics>()));
        services.AddActors();
        services.AddSingleton<GroupDispatcher>();
        services.AddHostedService(provider => provider.GetRequiredService<GroupDispatcher>());
        return services;
    }

    /// <summary>The connections of the forwarder: the node's one HTTP client to every target.</summary>
    internal static SocketsHttpHandler ForwardingHandler(ProcessingOptions options)
    {
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = ConnectionLifetime,
            ConnectTimeout = TimeSpan.FromSeconds(10),

            // The body goes to the target and nowhere else: a redirect is a failed attempt (HttpForwardHandler).
            AllowAutoRedirect = false,
        };
        if (options.RefuseLinkLocalTargets)
        {
            handler.ConnectCallback = TargetConnector.System.ConnectAsync;
        }

        return handler;
    }
}

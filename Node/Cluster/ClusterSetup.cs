using ClusterQueue.Node.Storage;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Cluster;

public static class ClusterSetup
{
    /// <summary>
    /// Akka.Cluster membership on every node (<see cref="MembershipOptions"/>); shard leases and the notifications
    /// between nodes when the store is PostgreSQL; with the embedded store, one node that owns every group. Register after processing: hosted services stop in reverse order, and the
    /// coordinator's graceful handover must run before the dispatcher's own drain.
    /// </summary>
    public static IServiceCollection AddCluster(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(NodeIdentity.From(configuration));
        services.AddOptions<MembershipOptions>().Bind(configuration.GetSection(MembershipOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<ClusterMembership>();
        var clustered = string.Equals(configuration[$"{StorageOptions.Section}:{nameof(StorageOptions.Store)}"], "postgres", StringComparison.Ordinal);
        if (!clustered)
        {
            services.AddSingleton(ShardOwnership.Standalone());
            return services;
        }

        services.AddOptions<ClusterOptions>().Bind(configuration.GetSection(ClusterOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(provider => ShardOwnership.Clustered(provider.GetRequiredService<IOptions<ClusterOptions>>().Value.Shards));
        services.AddSingleton(provider => new ShardLeaseStore(
            provider.GetRequiredService<PostgresDatabase>(),
            provider.GetRequiredService<IOptions<ClusterOptions>>().Value));
        services.AddSingleton<ClusterCoordinator>();
        services.AddHostedService(provider => provider.GetRequiredService<ClusterCoordinator>());
        services.AddHostedService<ClusterSignals>();
        return services;
    }
}

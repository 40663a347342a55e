using ClusterQueue.Node.Cluster.Leases;
using ClusterQueue.Node.Storage;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Cluster;

public static class ClusterSetup
{
    /// <summary>
    /// Akka.Cluster membership on every node (<see cref="MembershipOptions"/>). With the PostgreSQL store: the members
    /// find each other through the database (<see cref="DatabaseSeeds"/>), shards are fenced by leases whose events
    /// feed <see cref="ShardOwnership"/>, and group changes reach every node by LISTEN/NOTIFY. With the embedded store,
    /// one node that owns every group.
    /// </summary>
    public static IServiceCollection AddCluster(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(NodeIdentity.From(configuration));
        services.AddOptions<MembershipOptions>().Bind(configuration.GetSection(MembershipOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<ClusterOptions>().Bind(configuration.GetSection(ClusterOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<ClusterMembership>();
        var clustered = string.Equals(configuration[$"{StorageOptions.Section}:{nameof(StorageOptions.Store)}"], "postgres", StringComparison.Ordinal);
        if (!clustered)
        {
            services.AddSingleton(ShardOwnership.Standalone());
            return services;
        }

        services.AddSingleton(provider => ShardOwnership.Clustered(provider.GetRequiredService<IOptions<ClusterOptions>>().Value.Shards));
        services.AddSingleton(provider => new ClusterStore(provider.GetRequiredService<PostgresDatabase>()));
        services.AddSingleton<ILeaseListener, ShardLeaseEvents>();
        services.AddSingleton<PendingLeaseReleases>();
        services.AddSingleton<DatabaseSeeds>();
        services.AddHostedService<ShardCountCheck>();
        services.AddHostedService<ClusterSignals>();
        return services;
    }

    /// <summary>Refuses to start a node whose shard count differs from the one the cluster was created with.</summary>
    private sealed class ShardCountCheck(ClusterStore store, ShardOwnership ownership, ILogger<ShardCountCheck> logger) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            try
            {
                await store.EnsureShardsAsync(ownership.Shards, cancellationToken);
            }
            catch (InvalidOperationException ex)
            {
                Log.ConfigurationConflict(logger, ex);
                throw;
            }
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

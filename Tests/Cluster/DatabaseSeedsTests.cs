using ClusterQueue.Node.Cluster;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Tests.Cluster;

/// <summary>What a member's view of cluster_seeds tells shard placement, on a real PostgreSQL.</summary>
public sealed class DatabaseSeedsTests(PostgresServer server) : IClassFixture<PostgresServer>
{
    [Fact]
    public async Task LeavingMember_CountsItselfLapsed_SoItsOwnCoordinatorPlacesNothingOnIt()
    {
        await using var database = await server.OpenStoreAsync();
        var store = new ClusterStore(database);
        var seeds = new DatabaseSeeds(store, new NodeIdentity("node-c"), Options.Create(new ClusterOptions()), TimeProvider.System, NullLogger<DatabaseSeeds>.Instance);
        var self = Akka.Actor.Address.Parse("akka.tcp://clusterqueue@127.0.0.1:25520");
        await store.RenewSeedAsync(self.ToString(), "node-c", TimeSpan.FromMinutes(1), CancellationToken.None);

        // Nothing read yet: unknown, not "nobody lapsed".
        Assert.Null(seeds.LapsedNodes);

        await seeds.ForgetAsync(self, CancellationToken.None);

        Assert.Equal(["node-c"], seeds.LapsedNodes!);
        await using var read = database.ClusterSource.CreateCommand("SELECT leaving FROM cluster_seeds WHERE address = @address;");
        read.Parameters.AddWithValue("address", self.ToString());
        Assert.Equal(true, await read.ExecuteScalarAsync());
    }
}

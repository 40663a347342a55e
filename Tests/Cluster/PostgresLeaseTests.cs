using System.Diagnostics;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Coordination;
using Akka.DependencyInjection;
using ClusterQueue.Node.Cluster.Leases;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Storage;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using Xunit.Abstractions;

namespace ClusterQueue.Tests.Cluster;

/// <summary>
/// The Akka lease on a PostgreSQL row, against a real server: each "node" is an actor system of its own with its own
/// store (some through a TCP relay the test can freeze), sharing one database. Times are short but every bound leaves
/// seconds of room for a loaded 2-core machine.
/// </summary>
public sealed class PostgresLeaseTests(PostgresServer server, ITestOutputHelper output) : IClassFixture<PostgresServer>, IAsyncLifetime
{
    private const string Name = "clusterqueue-shard-groups-7";

    // TTL 4 s renewed every second; the holder's own deadline is 2.5 s after its last renewal was sent.
    private static readonly Timing Quick = new(Ttl: TimeSpan.FromSeconds(4), Interval: TimeSpan.FromSeconds(1), Margin: TimeSpan.FromSeconds(1.5), Operation: TimeSpan.FromSeconds(2));

    private readonly List<IAsyncDisposable> _owned = [];
    private string _connectionString = null!;
    private NpgsqlDataSource _direct = null!;

    public async Task InitializeAsync()
    {
        _connectionString = await server.CreateDatabaseAsync();
        _direct = NpgsqlDataSource.Create(_connectionString);
    }

    public async Task DisposeAsync()
    {
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }

        await _direct.DisposeAsync();
    }

    [Fact]
    public async Task Acquire_WhenFree_HoldsAtEpochOne_AndAnotherOwnerIsRefused()
    {
        var a = (await NodeAsync()).Lease(Name, "node-a", Quick);
        var b = (await NodeAsync()).Lease(Name, "node-b", Quick);

        Assert.True(await a.Acquire());
        Assert.True(a.CheckLease());
        Assert.Equal(1, a.Epoch);

        Assert.False(await b.Acquire());
        Assert.False(b.CheckLease());
        Assert.Null(b.Epoch);

        // The same owner again keeps its lease and its epoch.
        Assert.True(await a.Acquire());
        Assert.Equal(1, a.Epoch);
        var row = await RowAsync(Name);
        Assert.Equal(("node-a", 1L), (row.Owner, row.Epoch));
    }

    [Fact]
    public async Task Acquire_WhileTheHolderIsLeaving_TakesTheLeaseAsSoonAsItIsReleased()
    {
        // node-a's drain has begun: its shard stops, then releases the lease.
        var (a, b) = await HeldByNodeAAsync(leaving: true);

        var acquiring = b.Acquire();
        await Task.Delay(100);
        Assert.False(acquiring.IsCompleted, "node-b gave up while node-a was still leaving");
        Assert.True(await a.Release());

        // Taken within the same call, without waiting for Akka's next try.
        Assert.True(await acquiring);
        var row = await RowAsync(Name);
        Assert.Equal(("node-b", 2L), (row.Owner, row.Epoch));
    }

    [Fact]
    public async Task Acquire_WhileTheHolderStays_IsRefused_AndTheHolderKeepsIt()
    {
        var (a, b) = await HeldByNodeAAsync(leaving: false);

        Assert.False(await b.Acquire());
        Assert.True(a.CheckLease());
        var row = await RowAsync(Name);
        Assert.Equal(("node-a", 1L), (row.Owner, row.Epoch));
    }

    [Fact]
    public async Task Renewal_KeepsTheLeasePastItsTtl()
    {
        var a = (await NodeAsync()).Lease(Name, "node-a", Quick);
        var b = (await NodeAsync()).Lease(Name, "node-b", Quick);
        Assert.True(await a.Acquire());
        var first = await RowAsync(Name);

        await Task.Delay(Quick.Ttl * 2.5);

        Assert.True(a.CheckLease());
        Assert.False(await b.Acquire());
        var row = await RowAsync(Name);
        Assert.Equal(("node-a", 1L), (row.Owner, row.Epoch));
        Assert.True(row.ExpiresAt > row.Now, $"expires {row.ExpiresAt:O}, database time {row.Now:O}");
        Assert.True(row.ExpiresAt > first.ExpiresAt + Quick.Ttl, $"renewed to {row.ExpiresAt:O} from {first.ExpiresAt:O}");
    }

    [Fact]
    public async Task Expiry_ByTheDatabaseClock_LetsAnotherOwnerTakeItAtTheNextEpoch()
    {
        // Node clocks an hour off either way: a lease judged by either of them would expire at once or never.
        await using var relay = Relay();
        var a = (await NodeAsync(relay, new SkewedClock(TimeSpan.FromHours(-1)))).Lease(Name, "node-a", Quick);
        var b = (await NodeAsync(time: new SkewedClock(TimeSpan.FromHours(1)))).Lease(Name, "node-b", Quick);
        Assert.True(await a.Acquire());

        // node-a falls silent without releasing, as a crashed process would.
        relay.Freeze();
        var held = await RowAsync(Name);
        Assert.False(await b.Acquire());

        var deadline = Stopwatch.StartNew();
        while (!await b.Acquire())
        {
            Assert.True(deadline.Elapsed < Quick.Ttl + TimeSpan.FromSeconds(15), "node-b never got the expired lease");
            await Task.Delay(100);
        }

        var taken = await RowAsync(Name);
        Assert.True(taken.AcquiredAt >= held.ExpiresAt, $"taken at {taken.AcquiredAt:O}, the lease expired at {held.ExpiresAt:O}");
        Assert.Equal(("node-b", 2L), (taken.Owner, taken.Epoch));
        Assert.Equal(2, b.Epoch);
        Assert.False(a.CheckLease());

        // Taken from a failed owner at epoch 2; a handover after it keeps that mark, which saved group state is judged by.
        Assert.Equal((0L, 2L), (held.TakenOverAt, taken.TakenOverAt));
        var c = (await NodeAsync()).Lease(Name, "node-c", Quick);
        Assert.True(await b.Release());
        Assert.True(await c.Acquire());
        var handedOver = await RowAsync(Name);
        Assert.Equal(("node-c", 3L, 2L), (handedOver.Owner, handedOver.Epoch, handedOver.TakenOverAt));
    }

    [Fact]
    public async Task ReleaseInBackground_ReturnsAtOnceWhileTheDatabaseIsSilent_AndFreesTheRowOnceItAnswers()
    {
        await using var relay = Relay();
        var node = await NodeAsync(relay);
        var a = node.Lease(Name, "node-a", Quick, releaseInBackground: true);
        var b = (await NodeAsync()).Lease(Name, "node-b", Quick);
        Assert.True(await a.Acquire());

        // The way Akka.Cluster.Sharding's stopping shard calls it: synchronously, on an actor's thread. It must not wait
        // for the database, which does not answer now.
        relay.Freeze();
        var releasing = Stopwatch.StartNew();
        var release = a.Release();
        Assert.True(release.IsCompletedSuccessfully, "the release waited");
        Assert.True(await release);
        Assert.True(releasing.Elapsed < TimeSpan.FromSeconds(1), $"returned after {releasing.Elapsed}");
        Assert.False(a.CheckLease());
        Assert.Null(a.Epoch);
        Assert.Equal("node-a", (await RowAsync(Name)).Owner);

        // The row is freed once the database answers again, well before it would have expired, and the node's shutdown
        // can wait for that.
        relay.Thaw();
        Assert.True(await node.PendingReleases.WaitAsync(TimeSpan.FromSeconds(15)), "the background release never finished");
        Assert.Null((await RowAsync(Name)).Owner);
        Assert.True(await b.Acquire());
        Assert.Equal(2, b.Epoch);
    }

    [Fact]
    public async Task Release_LetsAnotherOwnerTakeItAtOnce_AndIsIdempotent()
    {
        var a = (await NodeAsync()).Lease(Name, "node-a", Quick);
        var b = (await NodeAsync()).Lease(Name, "node-b", Quick);
        Assert.True(await a.Acquire());

        Assert.True(await a.Release());
        Assert.False(a.CheckLease());
        Assert.Null(a.Epoch);

        // Well inside the TTL the lease would otherwise have had.
        var taking = Stopwatch.StartNew();
        Assert.True(await b.Acquire());
        Assert.True(taking.Elapsed < Quick.Ttl, $"took {taking.Elapsed}");
        Assert.Equal(2, b.Epoch);

        // Releasing again, or releasing what another owner now holds, changes nothing.
        Assert.True(await a.Release());
        var row = await RowAsync(Name);
        Assert.Equal(("node-b", 2L), (row.Owner, row.Epoch));
        Assert.True(b.CheckLease());

        // A handover is no takeover: nothing saved under epoch 1 is distrusted.
        Assert.Equal(0, row.TakenOverAt);
    }

    [Fact]
    public async Task CutOffHolder_GivesTheLeaseUpBeforeItsRowExpires_AndCallsLostOnce()
    {
        // TTL 6 s with a 3 s margin: the holder's deadline falls at least 3 s before its row expires.
        var timing = new Timing(Ttl: TimeSpan.FromSeconds(6), Interval: TimeSpan.FromSeconds(1), Margin: TimeSpan.FromSeconds(3), Operation: TimeSpan.FromSeconds(1));
        await using var relay = Relay();
        var a = (await NodeAsync(relay)).Lease(Name, "node-a", timing);
        var lost = new TaskCompletionSource<(long At, bool Checked)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        Assert.True(await a.Acquire(reason =>
        {
            Interlocked.Increment(ref calls);
            lost.TrySetResult((Stopwatch.GetTimestamp(), a.CheckLease()));
        }));
        await Task.Delay(timing.Interval * 1.5);

        // A partition: connections stay open, nothing answers, no error warns the holder.
        relay.Freeze();
        var frozen = Stopwatch.GetTimestamp();
        var (at, checkedInCallback) = await lost.Task.WaitAsync(TimeSpan.FromSeconds(20));

        // Map the callback's moment onto the database's clock, erring late: the query runs after it was sent.
        var asked = Stopwatch.GetTimestamp();
        var row = await RowAsync(Name);
        var callbackAtLatest = row.Now - Stopwatch.GetElapsedTime(at, asked);
        output.WriteLine($"lost {Stopwatch.GetElapsedTime(frozen, at).TotalSeconds:F2} s after the freeze, at least {(row.ExpiresAt - callbackAtLatest).TotalSeconds:F2} s before the row expired");
        Assert.True(callbackAtLatest < row.ExpiresAt, $"lost at {callbackAtLatest:O} by the database's clock, the row expires at {row.ExpiresAt:O}");
        Assert.False(checkedInCallback);
        Assert.False(a.CheckLease());
        Assert.Null(a.Epoch);

        // The renewals held up in the partition reach the database once it answers again, well after the holder gave
        // up: they do not extend the row behind its back, and the lease is not lost twice.
        await Task.Delay(TimeSpan.FromSeconds(1));
        relay.Thaw();
        await Task.Delay(timing.Interval * 3);
        Assert.Equal(1, Volatile.Read(ref calls));
        Assert.Equal(row.ExpiresAt, (await RowAsync(Name)).ExpiresAt);
        Assert.False(a.CheckLease());
    }

    [Fact]
    public async Task Renewal_FindingAnotherOwnerInTheRow_LosesTheLeaseOnce()
    {
        var a = (await NodeAsync()).Lease(Name, "node-a", Quick);
        var lost = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        Assert.True(await a.Acquire(reason =>
        {
            Interlocked.Increment(ref calls);
            lost.TrySetResult(reason);
        }));

        await using (var steal = _direct.CreateCommand("UPDATE leases SET owner = 'node-x', epoch = epoch + 1 WHERE name = @name;"))
        {
            steal.Parameters.AddWithValue("name", Name);
            Assert.Equal(1, await steal.ExecuteNonQueryAsync());
        }

        var reason = await lost.Task.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.IsType<LeaseException>(reason);
        Assert.False(a.CheckLease());
        await Task.Delay(Quick.Interval * 3);
        Assert.Equal(1, Volatile.Read(ref calls));
        Assert.Equal(("node-x", 2L), ((await RowAsync(Name)).Owner, (await RowAsync(Name)).Epoch));
    }

    [Fact]
    public async Task Acquire_WhenTheDatabaseIsSilent_FailsWithinTheOperationTimeout()
    {
        await using var relay = Relay();
        var a = (await NodeAsync(relay)).Lease(Name, "node-a", Quick);
        relay.Freeze();

        // The connection's own timeouts are 15 s and more; the operation timeout is 2 s.
        var asking = Stopwatch.StartNew();
        await Assert.ThrowsAsync<LeaseTimeoutException>(() => a.Acquire());
        Assert.True(asking.Elapsed < TimeSpan.FromSeconds(8), $"took {asking.Elapsed}");
        Assert.False(a.CheckLease());
    }

    [Fact]
    public async Task LeaseProvider_LoadsThePostgresLeaseFromConfiguration()
    {
        var node = await NodeAsync(config: PostgresLease.DefaultConfig);
        var provider = LeaseProvider.Get(node.System);

        var lease = Assert.IsType<PostgresLease>(provider.GetLease(Name, PostgresLease.ConfigPath, "node-a"));
        Assert.Same(lease, provider.GetLease(Name, PostgresLease.ConfigPath, "node-a"));
        Assert.Equal(TimeSpan.FromSeconds(10), lease.Settings.TimeoutSettings.HeartbeatTimeout);

        Assert.True(await lease.Acquire());
        var row = await RowAsync(Name);
        Assert.Equal("node-a", row.Owner);
        var left = row.ExpiresAt - row.Now;
        Assert.InRange(left, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10));
        Assert.True(await lease.Release());
    }

    [Fact]
    public async Task Create_WithASafetyMarginLeavingNoRoomForTwoRenewals_IsRefused()
    {
        var node = await NodeAsync();

        var refused = Assert.Throws<ArgumentException>(() => node.Lease(Name, "node-a", Quick with { Margin = TimeSpan.FromSeconds(3) }));
        Assert.Contains("safety-margin", refused.Message, StringComparison.Ordinal);
    }

    private TcpRelay Relay()
    {
        var connection = new NpgsqlConnectionStringBuilder(_connectionString);
        return new TcpRelay(new Uri($"tcp://{connection.Host}:{connection.Port}"));
    }

    /// <summary>An actor system with a store of its own on the test's database, directly or through <paramref name="relay"/>.</summary>
    private async Task<LeaseNode> NodeAsync(TcpRelay? relay = null, TimeProvider? time = null, Config? config = null)
    {
        var connection = new NpgsqlConnectionStringBuilder(_connectionString);
        if (relay is not null)
        {
            connection.Host = "127.0.0.1";
            connection.Port = relay.Port;
        }

        var options = new StorageOptions { Store = "postgres", Postgres = new PostgresOptions { ConnectionString = connection.ConnectionString, Writers = 1 } };
        var database = await Task.Run(() => new PostgresDatabase(Options.Create(options), NullLogger<PostgresDatabase>.Instance));
        var services = new ServiceCollection()
            .AddSingleton(database)
            .AddSingleton(time ?? TimeProvider.System)
            .AddSingleton<PendingLeaseReleases>()
            .BuildServiceProvider();
        var setup = BootstrapSetup.Create()
            .WithConfig((config ?? Config.Empty).WithFallback(ActorsSetup.Settings))
            .And(DependencyResolverSetup.Create(services));
        var node = new LeaseNode(ActorSystem.Create(nameof(PostgresLeaseTests), setup), database, services);
        _owned.Add(node);
        return node;
    }

    /// <summary>
    /// node-a holds the lease, and node-b's is ready to ask for it; node-a's row in cluster_seeds says whether it is
    /// leaving (marked so as its drain begins).
    /// </summary>
    private async Task<(PostgresLease Holder, PostgresLease Other)> HeldByNodeAAsync(bool leaving)
    {
        var a = (await NodeAsync()).Lease(Name, "node-a", Quick);
        var b = (await NodeAsync()).Lease(Name, "node-b", Quick);
        Assert.True(await a.Acquire());
        await using var seed = _direct.CreateCommand(
            "INSERT INTO cluster_seeds (address, node_id, expires_at, leaving) VALUES ('akka.tcp://node-a', 'a', clock_timestamp(), @leaving);");
        seed.Parameters.AddWithValue("leaving", leaving);
        await seed.ExecuteNonQueryAsync();
        return (a, b);
    }

    private async Task<LeaseRow> RowAsync(string name)
    {
        await using var command = _direct.CreateCommand("SELECT owner, epoch, acquired_at, expires_at, clock_timestamp(), taken_over_epoch FROM leases WHERE name = @name;");
        command.Parameters.AddWithValue("name", name);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync(), $"no row for lease {name}");
        return new LeaseRow(
            reader.IsDBNull(0) ? null : reader.GetString(0),
            reader.GetInt64(1),
            reader.GetFieldValue<DateTimeOffset>(2),
            reader.GetFieldValue<DateTimeOffset>(3),
            reader.GetFieldValue<DateTimeOffset>(4),
            reader.GetInt64(5));
    }

    private sealed record Timing(TimeSpan Ttl, TimeSpan Interval, TimeSpan Margin, TimeSpan Operation);

    private sealed record LeaseRow(string? Owner, long Epoch, DateTimeOffset AcquiredAt, DateTimeOffset ExpiresAt, DateTimeOffset Now, long TakenOverAt);

    /// <summary>A wall clock set wrong by <paramref name="skew"/>; its monotonic clock and timers are the real ones.</summary>
    private sealed class SkewedClock(TimeSpan skew) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + skew;
    }

    private sealed class LeaseNode(ActorSystem system, PostgresDatabase database, Microsoft.Extensions.DependencyInjection.ServiceProvider services) : IAsyncDisposable
    {
        private readonly List<PostgresLease> _leases = [];

        public ActorSystem System => system;

        public PendingLeaseReleases PendingReleases => services.GetRequiredService<PendingLeaseReleases>();

        public PostgresLease Lease(string name, string owner, Timing timing, bool releaseInBackground = false)
        {
            var settings = new LeaseSettings(
                name,
                owner,
                new TimeoutSettings(timing.Interval, timing.Ttl, timing.Operation),
                ConfigurationFactory.ParseString($"safety-margin = {(long)timing.Margin.TotalMilliseconds}ms\nrelease-in-background = {(releaseInBackground ? "on" : "off")}"));
            var lease = new PostgresLease(settings, (ExtendedActorSystem)system);
            _leases.Add(lease);
            return lease;
        }

        public async ValueTask DisposeAsync()
        {
            // Stops the leases' renewals; a release that cannot reach the database leaves a row that no later test sees.
            foreach (var lease in _leases)
            {
                try
                {
                    await lease.Release();
                }
                catch (LeaseException)
                {
                }
            }

            await system.Terminate();
            await services.DisposeAsync();
            await database.DisposeAsync();
        }
    }
}

using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ClusterQueue.Tests.Cluster;

/// <summary>
/// The shard coordinator's journal and snapshot store on the tables the store's migrations make, against a real
/// PostgreSQL. The coordinator snapshots itself only every 1,000 steps, which no other test reaches: a table the
/// plugin could not write would otherwise first show in production.
/// </summary>
public sealed class CoordinatorStateTests(PostgresServer server) : IClassFixture<PostgresServer>
{
    [Fact]
    public async Task Journal_AndSnapshot_AreWrittenAndRecovered_OnTheMigratedTables()
    {
        await using var database = await server.OpenStoreAsync();
        using var host = new HostBuilder()
            .ConfigureServices(services => services.AddAkka("coordinator-state", builder => builder.WithCoordinatorState(database.CoordinatorConnection)))
            .Build();
        await host.StartAsync();
        try
        {
            var system = host.Services.GetRequiredService<ActorSystem>();
            var first = system.ActorOf(Props.Create(() => new Steps()));
            Assert.Equal(["a"], await first.Ask<List<string>>(new Step("a"), TimeSpan.FromSeconds(20)));
            Assert.Equal(["a", "b"], await first.Ask<List<string>>(new Step("b"), TimeSpan.FromSeconds(20)));
            Assert.Equal("saved", await first.Ask<string>(Steps.Snapshot, TimeSpan.FromSeconds(20)));
            Assert.Equal(["a", "b", "c"], await first.Ask<List<string>>(new Step("c"), TimeSpan.FromSeconds(20)));
            await first.GracefulStop(TimeSpan.FromSeconds(10));

            // A new incarnation starts from the snapshot (a, b) and replays what followed it (c).
            var second = system.ActorOf(Props.Create(() => new Steps()));
            var recovered = await second.Ask<(List<string> Steps, bool FromSnapshot)>(Steps.Report, TimeSpan.FromSeconds(20));
            Assert.Equal(["a", "b", "c"], recovered.Steps);
            Assert.True(recovered.FromSnapshot, "recovered without the snapshot");
        }
        finally
        {
            await host.StopAsync();
        }

        await using var count = database.ClusterSource.CreateCommand(
            $"SELECT (SELECT count(*) FROM {CoordinatorState.JournalTable}), (SELECT count(*) FROM {CoordinatorState.SnapshotTable});");
        await using var reader = await count.ExecuteReaderAsync();
        await reader.ReadAsync();
        Assert.Equal((3L, 1L), (reader.GetInt64(0), reader.GetInt64(1)));
    }

    private sealed record Step(string Name);

    /// <summary>A persistent actor on the coordinator's plugins; its payloads are strings (Akka's own serializer).</summary>
    private sealed class Steps : ReceivePersistentActor
    {
        public const string Snapshot = "snapshot";
        public const string Report = "report";

        private List<string> _steps = [];
        private bool _fromSnapshot;
        private IActorRef? _saving;

        public Steps()
        {
            JournalPluginId = $"akka.persistence.journal.{CoordinatorState.PluginName}";
            SnapshotPluginId = $"akka.persistence.snapshot-store.{CoordinatorState.PluginName}";
            Recover<SnapshotOffer>(offer =>
            {
                _steps = [.. ((string)offer.Snapshot).Split(',')];
                _fromSnapshot = true;
            });
            Recover<string>(step => _steps.Add(step));
            Command<Step>(step =>
            {
                var sender = Sender;
                Persist(step.Name, name =>
                {
                    _steps.Add(name);
                    sender.Tell(new List<string>(_steps));
                });
            });
            Command<string>(command => command == Snapshot, _ =>
            {
                _saving = Sender;
                SaveSnapshot(string.Join(',', _steps));
            });
            Command<SaveSnapshotSuccess>(_ => _saving?.Tell("saved"));
            Command<SaveSnapshotFailure>(failure => _saving?.Tell(failure.Cause.ToString()));
            Command<string>(command => command == Report, _ => Sender.Tell((new List<string>(_steps), _fromSnapshot)));
        }

        public override string PersistenceId => "coordinator-state-test";
    }
}

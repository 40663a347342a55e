using Akka.Configuration;
using Akka.Persistence;
using Akka.Persistence.Snapshot;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// An Akka.Persistence snapshot store that never answers a load, as one whose database hangs would not: what an actor
/// does when it cannot learn its saved state. Saves and deletes succeed and keep nothing.
/// </summary>
public sealed class SilentSnapshotStore : SnapshotStore
{
    /// <summary>Makes it the actor system's snapshot store.</summary>
    public static readonly Config Settings = ConfigurationFactory.ParseString($$"""
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.silent"
        akka.persistence.snapshot-store.silent.class = "{{typeof(SilentSnapshotStore).AssemblyQualifiedName}}"
        """);

    protected override Task<SelectedSnapshot> LoadAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken) =>
        new TaskCompletionSource<SelectedSnapshot>().Task;

    protected override Task SaveAsync(SnapshotMetadata metadata, object snapshot, CancellationToken cancellationToken) => Task.CompletedTask;

    protected override Task DeleteAsync(SnapshotMetadata metadata, CancellationToken cancellationToken) => Task.CompletedTask;

    protected override Task DeleteAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken) => Task.CompletedTask;
}

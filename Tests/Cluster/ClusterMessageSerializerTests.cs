using Akka.Actor;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Ingress.Verification;
using ClusterQueue.Node.Processing;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Cluster;

/// <summary>The messages that will travel between members go through the node's own serializer, and come back equal.</summary>
public sealed class ClusterMessageSerializerTests : IAsyncLifetime
{
    private NodeHost _node = null!;

    public Task InitializeAsync()
    {
        _node = NodeHost.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _node.DisposeAsync();

    public static TheoryData<string> Messages => new() { "wake", "stop", "inspect", "reconfigure", "paused-adaptive", "snapshot", "saved-state", "saved-state-standalone" };

    [Theory]
    [MemberData(nameof(Messages))]
    public void Message_RoundTripsThroughTheNodesSerializer(string which)
    {
        var message = Message(which);
        var serialization = _node.Get<ActorSystem>().Serialization;

        var serializer = serialization.FindSerializerFor(message);
        Assert.IsType<ClusterMessageSerializer>(serializer);
        var bytes = serializer.ToBinary(message);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        var back = serialization.Deserialize(bytes, serializer.Identifier, manifest);

        Assert.Equal(message, back);
    }

    [Fact]
    public void Singletons_ComeBackAsTheSameInstance()
    {
        var serialization = _node.Get<ActorSystem>().Serialization;
        var serializer = serialization.FindSerializerFor(GroupProtocol.Wake.Instance);

        Assert.Same(GroupProtocol.Wake.Instance, serialization.Deserialize(serializer.ToBinary(GroupProtocol.Wake.Instance), serializer.Identifier, "wake"));
    }

    [Fact]
    public void UnknownManifest_IsRefused()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)_node.Get<ActorSystem>());

        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary([], "System.IO.FileInfo"));
    }

    private static object Message(string which) => which switch
    {
        "wake" => GroupProtocol.Wake.Instance,
        "stop" => GroupProtocol.Stop.Instance,
        "inspect" => GroupProtocol.Inspect.Instance,
        "reconfigure" => new GroupProtocol.Reconfigure(Settings()),
        "paused-adaptive" => new GroupProtocol.Reconfigure(Settings() with
        {
            PausedAt = DateTimeOffset.Parse("2026-12-04T10:00:00.123+00:00", System.Globalization.CultureInfo.InvariantCulture),
            MaxSteps = 7,
            AdaptiveRateDefinition = new AdaptiveRateDefinition { Enabled = true, DecreaseFactor = 0.25 },
        }),
        "snapshot" => new ActorSnapshot(3, 1.25, 12.5, DateTimeOffset.Parse("2026-12-04T10:00:01Z", System.Globalization.CultureInfo.InvariantCulture)),
        "saved-state" => new SavedGroupState(
            0.375,
            DateTimeOffset.Parse("2026-12-04T10:00:02.5Z", System.Globalization.CultureInfo.InvariantCulture),
            6.25,
            DateTimeOffset.Parse("2026-12-04T09:59:58Z", System.Globalization.CultureInfo.InvariantCulture),
            42),
        "saved-state-standalone" => new SavedGroupState(3, DateTimeOffset.Parse("2026-12-04T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture), null, null, null),
        _ => throw new ArgumentOutOfRangeException(nameof(which)),
    };

    private static GroupSettings Settings() => new(
        "orders",
        12.5,
        3,
        4,
        new Uri("http://127.0.0.1:9000/hooks/orders?x=1"),
        TimeSpan.FromSeconds(30),
        5,
        TimeSpan.FromSeconds(1),
        TimeSpan.FromMinutes(5),
        VerificationScheme.StandardWebhooks,
        "whsec_c2VjcmV0",
        1024 * 1024,
        DateTimeOffset.Parse("2026-12-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture),
        DateTimeOffset.Parse("2026-12-02T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
}

using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Akka.Actor;
using Akka.Serialization;
using SerializationException = System.Runtime.Serialization.SerializationException;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Processing;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// The one serializer for the node's own messages between members, and for the group states it saves in the store
/// (<see cref="GroupStateStore"/>): System.Text.Json under a fixed name per message.
/// Chosen over Akka's Newtonsoft default and over Hyperion because the payload names no .NET type (a member can only
/// ever be made to build one of the messages listed here, never a type named by the sender), the names stay stable
/// across renames and versions (a rolling upgrade reads the older member's messages), and the JSON is what the node
/// already uses for the same data over HTTP. A message with no name here is refused, never guessed.
/// </summary>
public sealed class ClusterMessageSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    /// <summary>Akka keeps 0-100 for itself; this number must never change once members talk to each other.</summary>
    public const int Id = 4_160;

    /// <summary>What this serializer is bound to; anything else between members would fall to Akka's defaults.</summary>
    internal static readonly Type[] Messages =
    [
        typeof(GroupProtocol.Wake), typeof(GroupProtocol.Reconfigure), typeof(GroupProtocol.Stop), typeof(GroupProtocol.Inspect),
        typeof(ActorSnapshot), typeof(GroupEnvelope), typeof(SavedGroupState),
    ];

    private const string Wake = "wake";
    private const string Reconfigure = "reconfigure";
    private const string Stop = "stop";
    private const string Inspect = "inspect";
    private const string Snapshot = "snapshot";
    private const string Envelope = "group";
    private const string SavedState = "group-state";

    private static readonly byte[] Empty = [];

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter() },

        // Only what a constructor or an init sets crosses; a derived value (GroupSettings.Adaptive) is derived again.
        TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { DropDerived } },
    };

    public override int Identifier => Id;

    public override string Manifest(object o) => o switch
    {
        GroupProtocol.Wake => Wake,
        GroupProtocol.Reconfigure => Reconfigure,
        GroupProtocol.Stop => Stop,
        GroupProtocol.Inspect => Inspect,
        ActorSnapshot => Snapshot,
        GroupEnvelope => Envelope,
        SavedGroupState => SavedState,
        _ => throw Unknown(o.GetType().FullName),
    };

    public override byte[] ToBinary(object obj) => obj switch
    {
        // The singletons carry nothing: their name is the whole message.
        GroupProtocol.Wake or GroupProtocol.Stop or GroupProtocol.Inspect => Empty,
        GroupProtocol.Reconfigure reconfigure => JsonSerializer.SerializeToUtf8Bytes(reconfigure.Settings, Json),
        ActorSnapshot snapshot => JsonSerializer.SerializeToUtf8Bytes(snapshot, Json),
        SavedGroupState state => JsonSerializer.SerializeToUtf8Bytes(state, Json),

        // What the shard region routes to another member: the group, and the message for its actor in its own form.
        GroupEnvelope envelope => JsonSerializer.SerializeToUtf8Bytes(new EnvelopeWire(envelope.GroupId, Manifest(envelope.Message), ToBinary(envelope.Message)), Json),
        _ => throw Unknown(obj.GetType().FullName),
    };

    public override object FromBinary(byte[] bytes, string manifest) => manifest switch
    {
        Wake => GroupProtocol.Wake.Instance,
        Stop => GroupProtocol.Stop.Instance,
        Inspect => GroupProtocol.Inspect.Instance,
        Reconfigure => new GroupProtocol.Reconfigure(Read<GroupSettings>(bytes)),
        Snapshot => Read<ActorSnapshot>(bytes),
        SavedState => Read<SavedGroupState>(bytes),
        Envelope => ReadEnvelope(bytes),
        _ => throw Unknown(manifest),
    };

    private GroupEnvelope ReadEnvelope(byte[] bytes)
    {
        var wire = Read<EnvelopeWire>(bytes);
        if (wire.Manifest == Envelope)
        {
            throw new SerializationException("A group envelope between members held another envelope.");
        }

        return new GroupEnvelope(wire.GroupId, FromBinary(wire.Payload, wire.Manifest));
    }

    private static void DropDerived(JsonTypeInfo type)
    {
        if (type.Kind != JsonTypeInfoKind.Object)
        {
            return;
        }

        for (var i = type.Properties.Count - 1; i >= 0; i--)
        {
            if (type.Properties[i].Set is null && type.Properties[i].AssociatedParameter is null)
            {
                type.Properties.RemoveAt(i);
            }
        }
    }

    private static T Read<T>(byte[] bytes) =>
        JsonSerializer.Deserialize<T>(bytes, Json) ?? throw new SerializationException($"A {typeof(T).Name} between members was null.");

    private static SerializationException Unknown(string? what) =>
        new($"{what} is not a message ClusterQueue sends between members.");

    private sealed record EnvelopeWire(string GroupId, string Manifest, byte[] Payload);
}

using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Queueing;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// One handler call: the leased message, the attempt number (1-based), the group as it was when the call started, and
/// when that was: the moment the group's bucket gave the call its token.
/// </summary>
public sealed record Delivery(LeasedMessage Message, GroupSettings Group, DateTimeOffset StartedAt)
{
    public int Attempt => Message.Attempt;
}

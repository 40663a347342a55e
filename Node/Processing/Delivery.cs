using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Queueing;

namespace ClusterQueue.Node.Processing;

/// <summary>One handler call: the leased message, the attempt number (1-based) and the group as it was when the call started.</summary>
public sealed record Delivery(LeasedMessage Message, GroupSettings Group)
{
    public int Attempt => Message.Attempt;
}

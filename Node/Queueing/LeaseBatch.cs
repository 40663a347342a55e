namespace ClusterQueue.Node.Queueing;

/// <summary>
/// The messages leased by one call, and when the group's next pending message becomes visible
/// (null: the group has no pending message at all, leased ones included).
/// </summary>
public sealed record LeaseBatch(IReadOnlyList<LeasedMessage> Messages, DateTimeOffset? NextVisibleAt);

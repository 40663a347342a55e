namespace ClusterQueue.Node.Groups;

/// <summary>A group was defined, changed (Settings set) or removed (Settings null).</summary>
public sealed record GroupChange(string GroupId, GroupSettings? Settings);

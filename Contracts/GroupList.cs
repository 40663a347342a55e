namespace ClusterQueue.Contracts;

/// <summary>One page of groups ordered by id; pass nextAfter as ?after= to read the next page.</summary>
public sealed record GroupList(IReadOnlyList<GroupResponse> Groups, string? NextAfter);

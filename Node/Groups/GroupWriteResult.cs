using ClusterQueue.Contracts;

namespace ClusterQueue.Node.Groups;

public enum GroupWriteOutcome
{
    Created,
    Replaced,
    NotFound,
    Invalid,
}

/// <summary>The outcome of a PUT or PATCH: the stored group, or the field errors that stopped it.</summary>
public sealed record GroupWriteResult(GroupWriteOutcome Outcome, GroupSettings? Settings, Dictionary<string, string[]>? Errors)
{
    public static GroupWriteResult NotFound { get; } = new(GroupWriteOutcome.NotFound, null, null);

    public static GroupWriteResult Invalid(Dictionary<string, string[]> errors) => new(GroupWriteOutcome.Invalid, null, errors);
}

namespace ClusterQueue.Contracts;

/// <summary>One page of dead letters, oldest first; pass nextAfter as ?after= for the next page.</summary>
public sealed record DeadLetterList(IReadOnlyList<DeadLetter> DeadLetters, string? NextAfter);

namespace ClusterQueue.Node.Queueing;

/// <summary>One handler call that did not deliver: when it started, how long it took, and the downstream's HTTP status if it answered.</summary>
public sealed record AttemptReport(DateTimeOffset StartedAt, TimeSpan Duration, int? Status);

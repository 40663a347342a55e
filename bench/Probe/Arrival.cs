namespace ClusterQueue.Bench.Probe;

/// <summary>
/// One forwarded request as the downstream saw it: when its handler started (probe clock), the headers the node
/// sets (the step is 1 for a message's first call), the send time the probe wrote into the body (0 when the body
/// carries none), whether it was the first request on its connection (the node had to open one for it), and when
/// the node started the call by its ClusterQueue-Started-At (probe clock; 0 without one).
/// </summary>
public sealed record Arrival(long At, string Group, string MessageId, string Node, int Attempt, long SentAt, int Step = 1, bool NewConnection = false, long StartedAt = 0);

namespace ClusterQueue.Bench.Probe;

/// <summary>
/// One request of an open-loop run, in probe-clock ticks. Latency counts from <see cref="Scheduled"/>, not from when
/// it was actually sent, so a stall delays the requests behind it and shows in their latency (no coordinated omission).
/// </summary>
public sealed record Sample(long Scheduled, long Launched, long Completed, int Status, string? MessageId)
{
    public bool Accepted => Status is >= 200 and < 300;

    public double LatencyMs => Clock.Milliseconds(Completed - Scheduled);

    public double LaunchLagMs => Clock.Milliseconds(Launched - Scheduled);
}

using System.Diagnostics;

namespace ClusterQueue.Bench.Probe;

/// <summary>One monotonic clock for the whole probe: send times, arrival times and schedules are all Stopwatch ticks.</summary>
public static class Clock
{
    public static long Now => Stopwatch.GetTimestamp();

    public static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;

    public static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    public static long Ticks(double seconds) => (long)Math.Round(seconds * Stopwatch.Frequency);

    // A wall-clock reading and a monotonic one taken together: the nodes stamp their calls by the wall clock.
    private static readonly (DateTimeOffset Wall, long Ticks) Anchor = (DateTimeOffset.UtcNow, Now);

    /// <summary>A wall-clock time of this machine on the probe's clock (the drift between the two is reported apart).</summary>
    public static long FromWall(DateTimeOffset wall) => Anchor.Ticks + Ticks((wall - Anchor.Wall).TotalSeconds);
}

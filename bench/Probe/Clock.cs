using System.Diagnostics;

namespace ClusterQueue.Bench.Probe;

/// <summary>One monotonic clock for the whole probe: send times, arrival times and schedules are all Stopwatch ticks.</summary>
public static class Clock
{
    public static long Now => Stopwatch.GetTimestamp();

    public static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;

    public static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    public static long Ticks(double seconds) => (long)Math.Round(seconds * Stopwatch.Frequency);
}

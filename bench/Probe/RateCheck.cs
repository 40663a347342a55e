namespace ClusterQueue.Bench.Probe;

/// <summary>The two accuracy figures of one group's arrivals (seconds on the probe clock, sorted).</summary>
public static class RateCheck
{
    /// <summary>
    /// The largest count(arrivals in [t_i, t_j]) − (burst + rate × (t_j − t_i)) over all pairs i ≤ j: how many
    /// messages a window got beyond what the bucket allows. O(n): for each j keep the best i seen so far, since the
    /// expression splits into (j − rate·t_j) + (rate·t_i − i) + 1 − burst.
    /// </summary>
    public static Overshoot WorstOvershoot(IReadOnlyList<double> times, double rate, int burst)
    {
        var best = new Overshoot(double.NegativeInfinity, 0, 0, 0);
        var bestStart = double.NegativeInfinity;
        var startIndex = 0;
        for (var j = 0; j < times.Count; j++)
        {
            var start = rate * times[j] - j;
            if (start > bestStart)
            {
                bestStart = start;
                startIndex = j;
            }

            var excess = j - rate * times[j] + bestStart + 1 - burst;
            if (excess > best.Excess)
            {
                best = new Overshoot(excess, j - startIndex + 1, times[j] - times[startIndex], times[j]);
            }
        }

        return best;
    }

    /// <summary>
    /// The steady rate once the burst is spent: arrivals from index <paramref name="burst"/> on are each paid for
    /// by one earned token, so (count − 1) intervals over their span. Null when fewer than three such arrivals.
    /// </summary>
    public static double? SteadyRate(IReadOnlyList<double> times, int burst)
    {
        var intervals = times.Count - 1 - burst;
        if (intervals < 2)
        {
            return null;
        }

        return intervals / (times[^1] - times[burst]);
    }
}

/// <summary>A window's excess over the bucket's allowance, in messages, with the window's size and end (seconds after the group opened).</summary>
public sealed record Overshoot(double Excess, int Count, double Seconds, double End);

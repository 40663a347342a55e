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
    /// The steady rate once the burst is spent: the least-squares slope of arrival number against arrival time, over
    /// the arrivals from index <paramref name="burst"/> on (each paid for by one earned token). A slope rather than
    /// (count − 1) / span because each arrival carries tens of ms of scheduling jitter on a busy machine, and the two
    /// end points alone would carry all of it. It starts at the first such arrival at or after <paramref name="settle"/>
    /// seconds: when a thousand groups open at once the node falls behind for a moment, and the tokens it earns meanwhile
    /// (up to the burst) are spent in a catch-up that would read as a rate above the configured one. Null when fewer
    /// than four arrivals are left.
    /// </summary>
    public static double? SteadyRate(IReadOnlyList<double> times, int burst, double settle)
    {
        var first = burst;
        while (first < times.Count && times[first] < settle)
        {
            first++;
        }

        var n = times.Count - first;
        if (n < 4)
        {
            return null;
        }

        var meanT = 0.0;
        var meanK = 0.0;
        for (var k = first; k < times.Count; k++)
        {
            meanT += times[k] / n;
            meanK += (double)k / n;
        }

        var covariance = 0.0;
        var variance = 0.0;
        for (var k = first; k < times.Count; k++)
        {
            covariance += (times[k] - meanT) * (k - meanK);
            variance += (times[k] - meanT) * (times[k] - meanT);
        }

        return covariance / variance;
    }
}

/// <summary>A window's excess over the bucket's allowance, in messages, with the window's size and end (seconds after the group opened).</summary>
public sealed record Overshoot(double Excess, int Count, double Seconds, double End);

using System.Globalization;

namespace ClusterQueue.Bench.Probe;

/// <summary>
/// One group of the rate run. Rates run from 0.5 to 50 per second with density proportional to 1/rate², so every
/// factor of ten in rate carries the same share of the traffic and the mean is 2.33/s: 1000 groups ask for about
/// 2,300 deliveries a second, which a 2-core machine can dispatch, where log-spaced rates would ask for 10,700.
/// Bursts cycle 1..10. The backlog outlasts the run: held call + burst + rate × (run + slack) + margin.
/// </summary>
public sealed record GroupPlan(string Id, double Rate, int Burst, int Backlog)
{
    public const double MinRate = 0.5;
    public const double MaxRate = 50;

    public static IReadOnlyList<GroupPlan> Spread(int groups, double seconds, double slackSeconds)
    {
        var plans = new List<GroupPlan>(groups);
        for (var i = 0; i < groups; i++)
        {
            var u = groups == 1 ? 0 : (double)i / (groups - 1);
            // The inverse of the 1/r² distribution's CDF on [MinRate, MaxRate]; rounded so the rate prints as configured.
            var rate = Math.Round(1 / (1 / MinRate - u * (1 / MinRate - 1 / MaxRate)), 3);
            var burst = 1 + i % 10;
            var backlog = 1 + burst + (int)Math.Ceiling(rate * (seconds * 1.05 + slackSeconds)) + 3;
            plans.Add(new GroupPlan($"g{i}", rate, burst, backlog));
        }

        return plans;
    }

    public string Rates => string.Create(CultureInfo.InvariantCulture, $"rate {Rate:0.###}/s burst {Burst}");
}

namespace ClusterQueue.Tests.Support;

/// <summary>Semantics 3 as an assertion over the arrival times a <see cref="Downstream"/> recorded.</summary>
public static class BucketAssert
{
    // The node takes a token when it starts a call; the downstream stamps the call when it arrives. The gap between
    // the two (network, connection, scheduling) varies from call to call, so arrival windows get 50 ms of slack.
    private static readonly TimeSpan ArrivalJitter = TimeSpan.FromMilliseconds(50);

    /// <summary>Every window between two arrivals (all pairs) holds at most burst + rate × (T + jitter) calls.</summary>
    public static void WithinBucket(string groupId, double rate, int burst, IReadOnlyList<DateTimeOffset> arrivals) =>
        WithinBucket(groupId, rate, burst, arrivals, ArrivalJitter);

    /// <summary>
    /// Every window between two starts the node stamped on its calls holds at most burst + rate × T: exact, since the
    /// stamps are the times the bucket gave the tokens. The one-tick slack is the bucket's own rounding
    /// (<c>TokenBucket</c> counts 0.999999999 of a token as one).
    /// </summary>
    public static void StartsWithinBucket(string groupId, double rate, int burst, IReadOnlyList<DateTimeOffset> starts) =>
        WithinBucket(groupId, rate, burst, starts, TimeSpan.FromTicks(1));

    /// <summary>As above with more slack, for calls from processes that start mid-test (a first call is slow to arrive).</summary>
    public static void WithinBucket(string groupId, double rate, int burst, IReadOnlyList<DateTimeOffset> arrivals, TimeSpan jitter)
    {
        for (var i = 0; i < arrivals.Count; i++)
        {
            for (var j = i + 1; j < arrivals.Count; j++)
            {
                var window = arrivals[j] - arrivals[i];
                var count = j - i + 1;
                var allowed = burst + (rate * (window + jitter).TotalSeconds);
                Assert.True(count <= allowed, $"{groupId}: {count} calls within {window.TotalMilliseconds:0} ms, allowed {allowed:0.00} (burst {burst}, rate {rate}/s).");
            }
        }
    }
}

namespace ClusterQueue.Node.Queueing;

/// <summary>
/// Exponential backoff with "equal jitter": the wait before attempt n+1 is drawn from [d/2, d] where
/// d = initial × 2^(n-1) capped at max. Half the delay is guaranteed, so retries never pile up at once, and the
/// random half spreads a burst of failures over time.
/// </summary>
public static class RetryBackoff
{
    public static TimeSpan Delay(int failedAttempt, TimeSpan initial, TimeSpan max, Random random)
    {
        var exponent = Math.Clamp(failedAttempt - 1, 0, 62);
        var seconds = Math.Min(max.TotalSeconds, initial.TotalSeconds * Math.Pow(2, exponent));
        return TimeSpan.FromSeconds(seconds / 2 + random.NextDouble() * seconds / 2);
    }
}

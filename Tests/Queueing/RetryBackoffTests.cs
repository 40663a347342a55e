using ClusterQueue.Node.Queueing;

namespace ClusterQueue.Tests.Queueing;

public sealed class RetryBackoffTests
{
    private const int Draws = 10_000;

    [Theory]
    [InlineData(1, 1, 300, 1)]
    [InlineData(2, 1, 300, 2)]
    [InlineData(3, 1, 300, 4)]
    [InlineData(5, 1, 300, 16)]
    [InlineData(9, 1, 300, 256)]
    [InlineData(10, 1, 300, 300)]
    [InlineData(1, 0.25, 10, 0.25)]
    [InlineData(4, 0.25, 10, 2)]
    [InlineData(7, 0.25, 10, 10)]
    [InlineData(3, 5, 5, 5)]
    public void Delay_ForAttempt_IsBetweenHalfAndAllOfTheCappedExponentialDelay(int failedAttempt, double initialSeconds, double maxSeconds, double fullSeconds)
    {
        var (shortest, longest) = DrawRange(failedAttempt, initialSeconds, maxSeconds, seed: failedAttempt);

        AssertJitteredWithin(fullSeconds, shortest, longest);
    }

    [Theory]
    [InlineData(40)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(1_000)]
    [InlineData(1_000_000)]
    [InlineData(int.MaxValue)]
    public void Delay_ForHugeAttemptNumber_StaysCappedAtMax(int failedAttempt)
    {
        var (shortest, longest) = DrawRange(failedAttempt, initialSeconds: 1, maxSeconds: 300, seed: 7);

        AssertJitteredWithin(300, shortest, longest);
    }

    [Fact]
    public void Delay_WithLargestAllowedSettings_DoesNotOverflow()
    {
        var max = TimeSpan.FromDays(1);

        var delay = RetryBackoff.Delay(int.MaxValue, TimeSpan.FromDays(1), max, new Random(3));

        Assert.InRange(delay, max / 2, max);
    }

    [Fact]
    public void Delay_WithSameSeed_IsRepeatable()
    {
        var first = new Random(42);
        var second = new Random(42);

        for (var attempt = 1; attempt <= 20; attempt++)
        {
            Assert.Equal(
                RetryBackoff.Delay(attempt, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5), first),
                RetryBackoff.Delay(attempt, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5), second));
        }
    }

    private static (TimeSpan Shortest, TimeSpan Longest) DrawRange(int failedAttempt, double initialSeconds, double maxSeconds, int seed)
    {
        var random = new Random(seed);
        var shortest = TimeSpan.MaxValue;
        var longest = TimeSpan.MinValue;
        for (var i = 0; i < Draws; i++)
        {
            var delay = RetryBackoff.Delay(failedAttempt, TimeSpan.FromSeconds(initialSeconds), TimeSpan.FromSeconds(maxSeconds), random);
            shortest = delay < shortest ? delay : shortest;
            longest = delay > longest ? delay : longest;
        }

        return (shortest, longest);
    }

    /// <summary>Every draw lies in [d/2, d], and the draws spread over that range (the jitter is really there).</summary>
    private static void AssertJitteredWithin(double fullSeconds, TimeSpan shortest, TimeSpan longest)
    {
        // One tick of slack: TimeSpan.FromSeconds truncates to whole ticks.
        var tick = 1.0 / TimeSpan.TicksPerSecond;
        Assert.InRange(shortest.TotalSeconds, fullSeconds / 2 - tick, fullSeconds / 2 + fullSeconds * 0.01);
        Assert.InRange(longest.TotalSeconds, fullSeconds - fullSeconds * 0.01, fullSeconds);
    }
}

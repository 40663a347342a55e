using ClusterQueue.Node.Processing;

namespace ClusterQueue.Tests.Processing;

public sealed class TokenBucketTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void New_Bucket_StartsFull()
    {
        var bucket = new TokenBucket(ratePerSecond: 1, burst: 5, Start);

        Assert.Equal(5, bucket.Available(Start));
        Assert.Equal(5, bucket.WholeTokens(Start));
        Assert.Equal(TimeSpan.Zero, bucket.TimeUntilFull(Start));
        Assert.Equal(TimeSpan.Zero, bucket.TimeUntilToken(Start));
    }

    [Fact]
    public void New_WithHalfAToken_RefusesUntilTheOtherHalfAccrues()
    {
        var bucket = new TokenBucket(ratePerSecond: 1, burst: 5, Start, tokens: 0.5);

        Assert.Equal(0.5, bucket.Available(Start), precision: 9);
        Assert.False(bucket.TryTake(Start));
        Assert.Equal(TimeSpan.FromMilliseconds(500), bucket.TimeUntilToken(Start));
        Assert.False(bucket.TryTake(Start + TimeSpan.FromMilliseconds(499)));
        Assert.True(bucket.TryTake(Start + TimeSpan.FromMilliseconds(500)));
        Assert.False(bucket.TryTake(Start + TimeSpan.FromMilliseconds(500)));
    }

    [Fact]
    public void WholeTokensAt_ALaterTime_CountsTheRefillWithoutTakingOrMovingTheClock()
    {
        var bucket = new TokenBucket(ratePerSecond: 10, burst: 3, Start, tokens: 0.5);

        Assert.Equal(0, bucket.WholeTokensAt(Start + TimeSpan.FromMilliseconds(49)));
        Assert.Equal(1, bucket.WholeTokensAt(Start + TimeSpan.FromMilliseconds(50)));
        Assert.Equal(3, bucket.WholeTokensAt(Start + TimeSpan.FromSeconds(10)));

        // Asking about the future changed nothing: the token is still 50 ms away.
        Assert.False(bucket.TryTake(Start));
        Assert.Equal(TimeSpan.FromMilliseconds(50), bucket.TimeUntilToken(Start));
        Assert.Equal(0, bucket.WholeTokensAt(Start - TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void New_WithTokensAboveBurst_IsClampedToBurst()
    {
        var bucket = new TokenBucket(ratePerSecond: 1, burst: 5, Start, tokens: 7.5);

        Assert.Equal(5, bucket.Available(Start));
        for (var i = 0; i < 5; i++)
        {
            Assert.True(bucket.TryTake(Start), $"take {i + 1} of the burst");
        }

        Assert.False(bucket.TryTake(Start));
    }

    [Fact]
    public void New_WithNegativeTokens_IsClampedToZero()
    {
        var bucket = new TokenBucket(ratePerSecond: 1, burst: 5, Start, tokens: -3);

        Assert.Equal(0, bucket.Available(Start));
        Assert.False(bucket.TryTake(Start));
        Assert.Equal(TimeSpan.FromSeconds(1), bucket.TimeUntilToken(Start));
        Assert.True(bucket.TryTake(Start + TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void TryTake_BurstTimesAtOnce_SucceedsThenRefuses()
    {
        var bucket = new TokenBucket(ratePerSecond: 1, burst: 5, Start);

        for (var i = 0; i < 5; i++)
        {
            Assert.True(bucket.TryTake(Start), $"take {i + 1} of the burst");
        }

        Assert.False(bucket.TryTake(Start));
        Assert.Equal(0, bucket.WholeTokens(Start));
    }

    [Fact]
    public void TryTake_WhenEmpty_SucceedsAgainAfterOneTokenPeriod()
    {
        var bucket = new TokenBucket(ratePerSecond: 4, burst: 1, Start);
        Assert.True(bucket.TryTake(Start));

        Assert.False(bucket.TryTake(Start + TimeSpan.FromMilliseconds(249)));
        Assert.True(bucket.TryTake(Start + TimeSpan.FromMilliseconds(250)));
        Assert.False(bucket.TryTake(Start + TimeSpan.FromMilliseconds(250)));
    }

    [Fact]
    public void Refill_WithFractionalRate_GainsHalfATokenPerSecond()
    {
        var bucket = new TokenBucket(ratePerSecond: 0.5, burst: 2, Start);
        Assert.True(bucket.TryTake(Start));
        Assert.True(bucket.TryTake(Start));

        var oneSecond = Start + TimeSpan.FromSeconds(1);
        Assert.Equal(0.5, bucket.Available(oneSecond), precision: 9);
        Assert.Equal(0, bucket.WholeTokens(oneSecond));
        Assert.False(bucket.TryTake(oneSecond));

        var twoSeconds = Start + TimeSpan.FromSeconds(2);
        Assert.True(bucket.TryTake(twoSeconds));
        Assert.False(bucket.TryTake(twoSeconds));
    }

    [Fact]
    public void Refill_AfterLongIdle_NeverExceedsBurst()
    {
        var bucket = new TokenBucket(ratePerSecond: 100, burst: 3, Start);
        for (var i = 0; i < 3; i++)
        {
            bucket.TryTake(Start);
        }

        var muchLater = Start + TimeSpan.FromDays(30);

        Assert.Equal(3, bucket.Available(muchLater));
        Assert.True(bucket.TryTake(muchLater));
        Assert.True(bucket.TryTake(muchLater));
        Assert.True(bucket.TryTake(muchLater));
        Assert.False(bucket.TryTake(muchLater));
    }

    [Fact]
    public void TimeUntilToken_WhenEmpty_IsExactlyTheMissingFractionOverTheRate()
    {
        var bucket = new TokenBucket(ratePerSecond: 2, burst: 3, Start);
        for (var i = 0; i < 3; i++)
        {
            bucket.TryTake(Start);
        }

        Assert.Equal(TimeSpan.FromMilliseconds(500), bucket.TimeUntilToken(Start));
        Assert.Equal(TimeSpan.FromMilliseconds(250), bucket.TimeUntilToken(Start + TimeSpan.FromMilliseconds(250)));
        Assert.Equal(TimeSpan.Zero, bucket.TimeUntilToken(Start + TimeSpan.FromMilliseconds(500)));
        Assert.Equal(TimeSpan.Zero, bucket.TimeUntilToken(Start + TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void TimeUntilFull_AfterTakes_IsExactlyTheMissingTokensOverTheRate()
    {
        var bucket = new TokenBucket(ratePerSecond: 0.5, burst: 4, Start);
        for (var i = 0; i < 3; i++)
        {
            bucket.TryTake(Start);
        }

        Assert.Equal(TimeSpan.FromSeconds(6), bucket.TimeUntilFull(Start));
        Assert.Equal(TimeSpan.FromSeconds(4.5), bucket.TimeUntilFull(Start + TimeSpan.FromSeconds(1.5)));
        Assert.Equal(TimeSpan.Zero, bucket.TimeUntilFull(Start + TimeSpan.FromSeconds(6)));
    }

    // The actor sleeps for TimeUntilToken and then takes: that wake-up must find the token, whatever the rate.
    [Theory]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(0.3)]
    [InlineData(1.1)]
    [InlineData(12_345.6)]
    [InlineData(999_999.7)]
    public void TryTake_AfterWaitingTimeUntilToken_Succeeds(double rate)
    {
        var bucket = new TokenBucket(rate, burst: 1, Start);
        var now = Start;
        for (var round = 0; round < 100; round++)
        {
            Assert.True(bucket.TryTake(now), $"round {round}");
            Assert.False(bucket.TryTake(now));
            now += bucket.TimeUntilToken(now);
        }
    }

    // The actor retires when TimeUntilFull is zero: after sleeping that long the bucket must be full.
    [Theory]
    [InlineData(3, 5)]
    [InlineData(0.3, 2)]
    [InlineData(1.1, 7)]
    [InlineData(12_345.6, 100)]
    public void TimeUntilFull_AfterWaitingThatLong_IsZero(double rate, int burst)
    {
        var bucket = new TokenBucket(rate, burst, Start);
        var now = Start;
        for (var round = 0; round < 100; round++)
        {
            for (var i = 0; i <= round % burst; i++)
            {
                bucket.TryTake(now);
            }

            now += bucket.TimeUntilFull(now);
            Assert.Equal(TimeSpan.Zero, bucket.TimeUntilFull(now));
            Assert.Equal(burst, bucket.WholeTokens(now));
        }
    }

    [Fact]
    public void Reconfigure_LowerBurst_CapsTokensAtTheNewBurst()
    {
        var bucket = new TokenBucket(ratePerSecond: 1, burst: 10, Start);

        bucket.Reconfigure(ratePerSecond: 1, burst: 3, Start);

        Assert.Equal(3, bucket.Available(Start));
        for (var i = 0; i < 3; i++)
        {
            Assert.True(bucket.TryTake(Start));
        }

        Assert.False(bucket.TryTake(Start));
        Assert.Equal(3, bucket.Available(Start + TimeSpan.FromHours(1)));
    }

    [Fact]
    public void Reconfigure_HigherBurst_DoesNotCreateTokens()
    {
        var bucket = new TokenBucket(ratePerSecond: 2, burst: 3, Start);

        bucket.Reconfigure(ratePerSecond: 2, burst: 10, Start);

        Assert.Equal(3, bucket.Available(Start));
        Assert.Equal(TimeSpan.FromSeconds(3.5), bucket.TimeUntilFull(Start));
    }

    [Fact]
    public void Reconfigure_HigherRate_AppliesFromNowWithoutBackfilling()
    {
        var bucket = new TokenBucket(ratePerSecond: 1, burst: 100, Start);
        for (var i = 0; i < 100; i++)
        {
            bucket.TryTake(Start);
        }

        var tenSeconds = Start + TimeSpan.FromSeconds(10);
        bucket.Reconfigure(ratePerSecond: 10, burst: 100, tenSeconds);

        Assert.Equal(10, bucket.Available(tenSeconds), precision: 9);
        Assert.Equal(20, bucket.Available(tenSeconds + TimeSpan.FromSeconds(1)), precision: 9);
    }

    [Fact]
    public void Reconfigure_LowerRate_KeepsTokensEarnedAtTheOldRate()
    {
        var bucket = new TokenBucket(ratePerSecond: 2, burst: 100, Start);
        for (var i = 0; i < 100; i++)
        {
            bucket.TryTake(Start);
        }

        var fiveSeconds = Start + TimeSpan.FromSeconds(5);
        bucket.Reconfigure(ratePerSecond: 0.5, burst: 100, fiveSeconds);

        Assert.Equal(10, bucket.Available(fiveSeconds), precision: 9);
        Assert.Equal(11, bucket.Available(fiveSeconds + TimeSpan.FromSeconds(2)), precision: 9);
    }

    [Theory]
    [InlineData(1e-9, 1, 31.7)]
    [InlineData(1e-9, 100, 3170)]
    public void TimeUntil_AtATinyRate_IsTheWholeLongWait(double rate, int burst, double years)
    {
        var bucket = new TokenBucket(rate, burst, Start, tokens: 0);

        var untilToken = bucket.TimeUntilToken(Start);
        var untilFull = bucket.TimeUntilFull(Start);

        Assert.InRange(untilToken.TotalDays / 365.25, 31.6, 31.8);
        Assert.InRange(untilFull.TotalDays / 365.25, years * 0.99, years * 1.01);
    }

    [Theory]
    [InlineData(1e-13)]
    [InlineData(1e-300)]
    [InlineData(double.Epsilon)]
    public void TimeUntil_WhenTheWaitIsLongerThanATimeSpanHolds_IsTheLongestTimeSpan_NeverNegative(double rate)
    {
        var bucket = new TokenBucket(rate, burst: 1_000_000, Start, tokens: 0);

        Assert.Equal(TimeSpan.MaxValue, bucket.TimeUntilToken(Start));
        Assert.Equal(TimeSpan.MaxValue, bucket.TimeUntilFull(Start));
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(-1, 1)]
    [InlineData(double.NaN, 1)]
    [InlineData(1, 0)]
    [InlineData(1, -5)]
    public void New_WithNonPositiveOrNaNRateOrBurst_Throws(double rate, int burst)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(rate, burst, Start));
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(double.NaN, 1)]
    [InlineData(1, 0)]
    public void Reconfigure_WithNonPositiveOrNaNRateOrBurst_ThrowsAndKeepsSettings(double rate, int burst)
    {
        var bucket = new TokenBucket(ratePerSecond: 2, burst: 3, Start);

        Assert.Throws<ArgumentOutOfRangeException>(() => bucket.Reconfigure(rate, burst, Start));

        Assert.Equal(2, bucket.RatePerSecond);
        Assert.Equal(3, bucket.Burst);
    }

    /// <summary>
    /// Semantics 3 of the design, as a property: a taker that takes whenever it can, checking at random moments, never
    /// gets more than burst + rate × T in any window of T seconds, and over a long run gets the full rate.
    /// </summary>
    [Theory]
    [InlineData(0.5, 1, 1L, 11)]
    [InlineData(3, 5, 1L, 12)]
    [InlineData(7.3, 1, 1L, 13)]
    [InlineData(50, 20, 1L, 14)]
    [InlineData(0.5, 2, TimeSpan.TicksPerMillisecond, 15)]
    [InlineData(4, 3, TimeSpan.TicksPerMillisecond, 16)]
    [InlineData(1000, 10, TimeSpan.TicksPerMillisecond, 17)]
    public void TryTake_WheneverPossibleAtRandomMoments_StaysWithinBurstPlusRateTimesWindow(double rate, int burst, long quantumTicks, int seed)
    {
        const int ExpectedTakes = 4000;
        var random = new Random(seed);
        var bucket = new TokenBucket(rate, burst, Start);

        // With burst > 1 a step never lets a nearly empty bucket overflow, so no capacity is wasted; with burst 1 every
        // step past the token is waste, so steps stay tiny to keep the long-run rate measurable to well under 1%.
        var maxStepTicks = Math.Max(quantumTicks, (long)(Math.Max(burst - 1, 0.002) / rate * TimeSpan.TicksPerSecond));
        var duration = TimeSpan.FromSeconds((ExpectedTakes - burst) / rate);
        var takes = new List<long>(ExpectedTakes + 10);
        var now = Start;
        while (now - Start <= duration)
        {
            while (bucket.TryTake(now))
            {
                takes.Add((now - Start).Ticks);
            }

            var steps = random.NextInt64(0, maxStepTicks / quantumTicks + 1);
            now += TimeSpan.FromTicks(steps * quantumTicks);
        }

        var worstExcess = double.NegativeInfinity;
        var worstWindow = (First: 0, Last: 0);
        for (var first = 0; first < takes.Count; first++)
        {
            for (var last = first; last < takes.Count; last++)
            {
                var seconds = (takes[last] - takes[first]) / (double)TimeSpan.TicksPerSecond;
                var excess = (last - first + 1) - (burst + rate * seconds);
                if (excess > worstExcess)
                {
                    worstExcess = excess;
                    worstWindow = (first, last);
                }
            }
        }

        Assert.True(
            worstExcess <= 1e-6,
            $"takes {worstWindow.First}..{worstWindow.Last} ({worstWindow.Last - worstWindow.First + 1} takes in "
            + $"{(takes[worstWindow.Last] - takes[worstWindow.First]) / (double)TimeSpan.TicksPerSecond} s) exceed burst + rate × T by {worstExcess}");

        var expected = burst + rate * duration.TotalSeconds;
        Assert.InRange(takes.Count, expected * 0.99, expected * 1.01);
    }
}

namespace ClusterQueue.Node.Processing;

/// <summary>
/// A token bucket: holds at most <see cref="Burst"/> tokens and gains <see cref="RatePerSecond"/> per second.
/// Starting a message takes one token, so the starts in any window of T seconds never exceed burst + rate × T.
/// Tokens accrue from elapsed time, not from timer ticks, so a late timer loses no capacity. Not thread-safe:
/// it belongs to one actor.
/// </summary>
public sealed class TokenBucket
{
    // Absorbs floating-point error so a bucket that should hold exactly one token is not seen as holding 0.9999999.
    private const double Epsilon = 1e-9;

    private double _tokens;
    private DateTimeOffset _updatedAt;

    /// <summary>A bucket holding <paramref name="tokens"/> (full when null): a group that moves between nodes keeps what it had spent.</summary>
    public TokenBucket(double ratePerSecond, int burst, DateTimeOffset now, double? tokens = null)
    {
        Validate(ratePerSecond, burst);
        RatePerSecond = ratePerSecond;
        Burst = burst;
        _tokens = tokens is { } start && double.IsFinite(start) ? Math.Clamp(start, 0, burst) : burst;
        _updatedAt = now;
    }

    public double RatePerSecond { get; private set; }

    public int Burst { get; private set; }

    public double Available(DateTimeOffset now)
    {
        Refill(now);
        return _tokens;
    }

    /// <summary>How many whole tokens could be taken now.</summary>
    public int WholeTokens(DateTimeOffset now)
    {
        Refill(now);
        return (int)Math.Floor(_tokens + Epsilon);
    }

    /// <summary>
    /// How many whole tokens the bucket will hold at <paramref name="at"/> if none is taken before then. It changes
    /// nothing: an actor asks it to lease messages ahead of the tokens they will take.
    /// </summary>
    public int WholeTokensAt(DateTimeOffset at)
    {
        var tokens = at <= _updatedAt ? _tokens : Math.Min(Burst, _tokens + (at - _updatedAt).TotalSeconds * RatePerSecond);
        return (int)Math.Floor(tokens + Epsilon);
    }

    public bool TryTake(DateTimeOffset now)
    {
        Refill(now);
        if (_tokens + Epsilon < 1)
        {
            return false;
        }

        _tokens = Math.Max(0, _tokens - 1);
        return true;
    }

    /// <summary>How long until one whole token is available (zero when one already is).</summary>
    public TimeSpan TimeUntilToken(DateTimeOffset now)
    {
        Refill(now);
        return TimeToEarn(1 - _tokens);
    }

    /// <summary>How long until the bucket is full again, which is when it is indistinguishable from a fresh one.</summary>
    public TimeSpan TimeUntilFull(DateTimeOffset now)
    {
        Refill(now);
        return TimeToEarn(Burst - _tokens);
    }

    // Rounded up to a whole tick: TimeSpan.FromSeconds truncates, and a wait one tick short finds the token missing. A
    // tiny rate can need more ticks than a TimeSpan holds (1e-13 per second: 300,000 years a token); that wait is the
    // longest TimeSpan, never a wrapped-around negative one. Whoever waits for it arms its timer in steps (GroupActor).
    private TimeSpan TimeToEarn(double missing)
    {
        if (missing <= Epsilon)
        {
            return TimeSpan.Zero;
        }

        var ticks = Math.Ceiling(missing / RatePerSecond * TimeSpan.TicksPerSecond);
        return ticks < TimeSpan.MaxValue.Ticks ? TimeSpan.FromTicks((long)ticks) : TimeSpan.MaxValue;
    }

    /// <summary>
    /// Applies a new rate and burst from now on. Tokens earned so far are kept (capped at the new burst) so a change
    /// never creates tokens out of nothing.
    /// </summary>
    public void Reconfigure(double ratePerSecond, int burst, DateTimeOffset now)
    {
        Validate(ratePerSecond, burst);
        Refill(now);
        RatePerSecond = ratePerSecond;
        Burst = burst;
        _tokens = Math.Min(_tokens, burst);
    }

    private void Refill(DateTimeOffset now)
    {
        if (now <= _updatedAt)
        {
            return;
        }

        _tokens = Math.Min(Burst, _tokens + (now - _updatedAt).TotalSeconds * RatePerSecond);
        _updatedAt = now;
    }

    private static void Validate(double ratePerSecond, int burst)
    {
        if (!double.IsFinite(ratePerSecond) || ratePerSecond <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(ratePerSecond), ratePerSecond, "The rate must be a finite number above zero.");
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(burst);
    }
}

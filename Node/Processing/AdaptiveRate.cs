using ClusterQueue.Contracts;

namespace ClusterQueue.Node.Processing;

/// <summary>A group's resolved AIMD settings (see <see cref="AdaptiveRateDefinition"/>).</summary>
public sealed record AdaptiveRateSettings(double DecreaseFactor, double IncreasePerSecond, double MinRatePerSecond)
{
    public const double DefaultDecreaseFactor = 0.5;

    /// <summary>Null when the definition does not enable it.</summary>
    public static AdaptiveRateSettings? From(AdaptiveRateDefinition? definition, double ratePerSecond) =>
        definition is null || definition.Enabled == false
            ? null
            : new AdaptiveRateSettings(
                definition.DecreaseFactor ?? DefaultDecreaseFactor,
                definition.IncreasePerSecond ?? ratePerSecond / 10,
                Math.Min(definition.MinRatePerSecond ?? ratePerSecond / 100, ratePerSecond));
}

/// <summary>
/// One group's effective rate under AIMD, kept by its actor. "Repeatedly" means two 429/503 answers with no success
/// between them; while they go on, the rate drops at most once a second, so a burst of concurrent refusals of one
/// overload counts once. Each success adds IncreasePerSecond × the seconds since the last change, never past the
/// configured rate. Not thread-safe: it belongs to one actor.
/// </summary>
public sealed class AdaptiveRate(double configured, AdaptiveRateSettings settings, DateTimeOffset now)
{
    private static readonly TimeSpan DecreaseSpacing = TimeSpan.FromSeconds(1);

    private int _refusalsInARow;
    private DateTimeOffset _changedAt = now;
    private DateTimeOffset _decreasedAt = DateTimeOffset.MinValue;

    public double Configured { get; private set; } = configured;

    public double Effective { get; private set; } = configured;

    public AdaptiveRateSettings Settings { get; private set; } = settings;

    /// <summary>When the effective rate last changed: a success adds IncreasePerSecond × the time since.</summary>
    public DateTimeOffset ChangedAt => _changedAt;

    /// <summary>Takes up where the group's previous actor left off: its effective rate (within today's bounds) and when that last changed.</summary>
    public void Resume(double effective, DateTimeOffset changedAt)
    {
        Effective = Math.Clamp(effective, Settings.MinRatePerSecond, Configured);
        _changedAt = changedAt;
    }

    /// <summary>A new definition: the effective rate stays where it was, within the new bounds.</summary>
    public void Reconfigure(double configured, AdaptiveRateSettings settings)
    {
        Configured = configured;
        Settings = settings;
        Effective = Math.Clamp(Effective, settings.MinRatePerSecond, configured);
    }

    /// <summary>Records a 429/503; true when it lowered the effective rate.</summary>
    public bool Refused(DateTimeOffset now)
    {
        if (++_refusalsInARow < 2 || now - _decreasedAt < DecreaseSpacing)
        {
            return false;
        }

        var lowered = Math.Max(Settings.MinRatePerSecond, Effective * Settings.DecreaseFactor);
        _decreasedAt = now;
        _changedAt = now;
        if (lowered >= Effective)
        {
            return false;
        }

        Effective = lowered;
        return true;
    }

    /// <summary>Records a success; true when it raised the effective rate.</summary>
    public bool Succeeded(DateTimeOffset now)
    {
        _refusalsInARow = 0;
        var raised = Math.Min(Configured, Effective + (Settings.IncreasePerSecond * Math.Max(0, (now - _changedAt).TotalSeconds)));
        _changedAt = now;
        if (raised <= Effective)
        {
            return false;
        }

        Effective = raised;
        return true;
    }
}

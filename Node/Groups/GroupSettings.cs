using ClusterQueue.Contracts;
using ClusterQueue.Node.Ingress.Verification;

namespace ClusterQueue.Node.Groups;

/// <summary>A group's definition with every default resolved: what ingress and the group's actor work from.</summary>
public sealed record GroupSettings(
    string Id,
    double RatePerSecond,
    int Burst,
    int MaxConcurrency,
    Uri TargetUrl,
    TimeSpan HandlerTimeout,
    int MaxAttempts,
    TimeSpan BackoffInitial,
    TimeSpan BackoffMax,
    VerificationScheme? Scheme,
    string? Secret,
    long MaxPayloadBytes,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    /// <summary>A hundred steps of a long job (each under the handler timeout) cover hours of work.</summary>
    public const int DefaultMaxSteps = 100;

    /// <summary>Continuation steps one message may take; the step after the last is a dead letter.</summary>
    public int MaxSteps { get; init; } = DefaultMaxSteps;

    /// <summary>As defined (stored and returned as given); <see cref="Adaptive"/> is its resolved form, null when off.</summary>
    public AdaptiveRateDefinition? AdaptiveRateDefinition { get; init; }

    public Processing.AdaptiveRateSettings? Adaptive => Processing.AdaptiveRateSettings.From(AdaptiveRateDefinition, RatePerSecond);

    /// <summary>Since when an operator has paused the group (nothing is processed); null while it runs.</summary>
    public DateTimeOffset? PausedAt { get; init; }

    /// <summary>Long enough for a typical HTTP handler; long jobs use continuations instead of longer calls.</summary>
    public const double DefaultHandlerTimeoutSeconds = 30;

    /// <summary>Five attempts with the default backoff span about half a minute of downstream trouble before a dead letter.</summary>
    public const int DefaultMaxAttempts = 5;

    public const double DefaultBackoffInitialSeconds = 1;

    /// <summary>Five minutes caps a retry's wait so a recovered downstream is retried soon.</summary>
    public const double DefaultBackoffMaxSeconds = 300;

    /// <summary>1 MiB holds any common webhook and keeps a burst of bodies affordable in memory.</summary>
    public const long DefaultMaxPayloadBytes = 1024 * 1024;

    /// <summary>The stored form: a definition with every field filled in, the secret included.</summary>
    public GroupDefinition ToDefinition() => new()
    {
        RatePerSecond = RatePerSecond,
        Burst = Burst,
        MaxConcurrency = MaxConcurrency,
        Target = new TargetDefinition { Url = TargetUrl.OriginalString },
        HandlerTimeoutSeconds = HandlerTimeout.TotalSeconds,
        MaxAttempts = MaxAttempts,
        RetryBackoff = new RetryBackoffDefinition { InitialSeconds = BackoffInitial.TotalSeconds, MaxSeconds = BackoffMax.TotalSeconds },
        Verification = Scheme is { } scheme ? new VerificationDefinition { Scheme = VerificationSchemes.ToWire(scheme), Secret = Secret } : null,
        MaxPayloadBytes = MaxPayloadBytes,
        MaxSteps = MaxSteps,
        AdaptiveRate = AdaptiveRateDefinition,
    };

    /// <summary>What the API returns: never the secret, nor a password in the target URL.</summary>
    public GroupResponse ToResponse() => new(
        Id,
        RatePerSecond,
        Burst,
        MaxConcurrency,
        new TargetDefinition { Url = TargetUrls.Shown(TargetUrl) },
        HandlerTimeout.TotalSeconds,
        MaxAttempts,
        new RetryBackoffResponse(BackoffInitial.TotalSeconds, BackoffMax.TotalSeconds),
        Scheme is { } scheme ? new VerificationResponse(VerificationSchemes.ToWire(scheme), !string.IsNullOrEmpty(Secret)) : null,
        MaxPayloadBytes,
        MaxSteps,
        CreatedAt,
        UpdatedAt,
        PausedAt is not null,
        PausedAt,
        Adaptive is { } adaptive
            ? new AdaptiveRateDefinition { Enabled = true, DecreaseFactor = adaptive.DecreaseFactor, IncreasePerSecond = adaptive.IncreasePerSecond, MinRatePerSecond = adaptive.MinRatePerSecond }
            : AdaptiveRateDefinition);

    /// <summary>
    /// A definition's seconds as the group holds them. TimeSpan keeps whole ticks (100 ns) and drops the rest, so a tiny
    /// value becomes zero: <see cref="GroupValidator"/> judges durations by this same conversion.
    /// </summary>
    public static TimeSpan Duration(double seconds) => TimeSpan.FromSeconds(seconds);

    /// <summary>Builds settings from a definition that <see cref="GroupValidator"/> accepted.</summary>
    public static GroupSettings FromValidDefinition(string id, GroupDefinition definition, DateTimeOffset createdAt, DateTimeOffset updatedAt)
    {
        VerificationScheme? scheme = null;
        if (definition.Verification is { Scheme: { } wire } && VerificationSchemes.TryParse(wire, out var parsed))
        {
            scheme = parsed;
        }

        return new GroupSettings(
            id,
            definition.RatePerSecond!.Value,
            definition.Burst!.Value,
            definition.MaxConcurrency!.Value,
            new Uri(definition.Target!.Url!, UriKind.Absolute),
            Duration(definition.HandlerTimeoutSeconds ?? DefaultHandlerTimeoutSeconds),
            definition.MaxAttempts ?? DefaultMaxAttempts,
            Duration(definition.RetryBackoff?.InitialSeconds ?? DefaultBackoffInitialSeconds),
            Duration(definition.RetryBackoff?.MaxSeconds ?? DefaultBackoffMaxSeconds),
            scheme,
            scheme is null ? null : definition.Verification!.Secret,
            definition.MaxPayloadBytes ?? DefaultMaxPayloadBytes,
            createdAt,
            updatedAt)
        {
            MaxSteps = definition.MaxSteps ?? DefaultMaxSteps,
            AdaptiveRateDefinition = definition.AdaptiveRate,
        };
    }
}

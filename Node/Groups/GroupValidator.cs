using System.Text.RegularExpressions;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Ingress.Verification;

namespace ClusterQueue.Node.Groups;

/// <summary>
/// Checks a group definition field by field. Errors are keyed by the field's JSON path (camelCase) so a 400 names
/// exactly what to fix. The upper bounds keep one group from starving the node (memory, connections, timers).
/// </summary>
public static partial class GroupValidator
{
    public const double MaxRatePerSecond = 1_000_000;
    public const int MaxBurst = 1_000_000;
    public const int MaxConcurrencyLimit = 10_000;

    /// <summary>An hour: longer work belongs in continuations, and a lease must be renewable within it.</summary>
    public const double MaxHandlerTimeoutSeconds = 3600;

    public const int MaxAttemptsLimit = 1000;

    /// <summary>
    /// The shortest handler timeout or backoff, 1 ms: anything shorter is below what timers resolve, and a value below a
    /// tick (100 ns) would be held as zero (every call timing out at once, or retries with no pause at all).
    /// </summary>
    public static readonly TimeSpan MinDuration = TimeSpan.FromMilliseconds(1);

    /// <summary>A day: a longer wait between attempts is better served by the dead-letter queue and a redrive.</summary>
    public const double MaxBackoffSeconds = 86_400;

    /// <summary>Bodies are held in memory while they are ingested and handled, so one message stays well under that budget.</summary>
    public const long MaxPayloadBytesLimit = 32L * 1024 * 1024;

    /// <summary>A message's step chain is kept whole in its status, so it stays bounded.</summary>
    public const int MaxStepsLimit = 1000;

    // \z, not $: $ also matches before a final newline, which would let "orders\n" through.
    [GeneratedRegex(@"^[A-Za-z0-9._-]{1,128}\z")]
    private static partial Regex GroupIdPattern();

    /// <summary>
    /// Also not "." or "..": clients and servers remove those path segments, so /v1/groups/. and /hooks/.. never reach
    /// the group (and a group that cannot be addressed cannot be changed or deleted either).
    /// </summary>
    public static bool IsValidId(string? id) => id is not null and not "." and not ".." && GroupIdPattern().IsMatch(id);

    /// <summary>A duration in seconds the group can hold: finite, at most <paramref name="maxSeconds"/>, and at least <see cref="MinDuration"/> once converted.</summary>
    private static bool IsDuration(double seconds, double maxSeconds) =>
        double.IsFinite(seconds) && seconds > 0 && seconds <= maxSeconds && GroupSettings.Duration(seconds) >= MinDuration;

    public static Dictionary<string, string[]> Validate(GroupDefinition definition)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        void Fail(string field, string message) => errors[field] = [message];

        if (definition.RatePerSecond is not { } rate)
        {
            Fail("ratePerSecond", "ratePerSecond is required.");
        }
        else if (!double.IsFinite(rate) || rate <= 0 || rate > MaxRatePerSecond)
        {
            Fail("ratePerSecond", $"ratePerSecond must be a number above 0 and at most {MaxRatePerSecond}.");
        }

        if (definition.Burst is not { } burst)
        {
            Fail("burst", "burst is required.");
        }
        else if (burst < 1 || burst > MaxBurst)
        {
            Fail("burst", $"burst must be an integer from 1 to {MaxBurst}.");
        }

        if (definition.MaxConcurrency is not { } concurrency)
        {
            Fail("maxConcurrency", "maxConcurrency is required.");
        }
        else if (concurrency < 1 || concurrency > MaxConcurrencyLimit)
        {
            Fail("maxConcurrency", $"maxConcurrency must be an integer from 1 to {MaxConcurrencyLimit}.");
        }

        if (definition.Target?.Url is not { } url || string.IsNullOrWhiteSpace(url))
        {
            Fail("target.url", "target.url is required.");
        }
        else if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            Fail("target.url", "target.url must be an absolute http or https URL.");
        }
        else if (TargetUrls.HasUserInfo(uri))
        {
            Fail("target.url", "target.url must not contain a user name or password (user:password@): they are never sent to the target, and would be stored in plain text.");
        }

        if (definition.HandlerTimeoutSeconds is { } timeout && !IsDuration(timeout, MaxHandlerTimeoutSeconds))
        {
            Fail("handlerTimeoutSeconds", $"handlerTimeoutSeconds must be at least 0.001 (1 ms) and at most {MaxHandlerTimeoutSeconds}.");
        }

        if (definition.MaxAttempts is { } attempts && (attempts < 1 || attempts > MaxAttemptsLimit))
        {
            Fail("maxAttempts", $"maxAttempts must be an integer from 1 to {MaxAttemptsLimit}.");
        }

        if (definition.RetryBackoff is { } backoff)
        {
            var initial = backoff.InitialSeconds ?? GroupSettings.DefaultBackoffInitialSeconds;
            var max = backoff.MaxSeconds ?? GroupSettings.DefaultBackoffMaxSeconds;
            var initialValid = IsDuration(initial, MaxBackoffSeconds);
            if (!initialValid)
            {
                Fail("retryBackoff.initialSeconds", $"retryBackoff.initialSeconds must be at least 0.001 (1 ms) and at most {MaxBackoffSeconds}.");
            }

            if (!IsDuration(max, MaxBackoffSeconds))
            {
                Fail("retryBackoff.maxSeconds", $"retryBackoff.maxSeconds must be at least 0.001 (1 ms) and at most {MaxBackoffSeconds}.");
            }
            else if (initialValid && max < initial)
            {
                Fail("retryBackoff.maxSeconds", $"retryBackoff.maxSeconds must be at least initialSeconds ({initial}) and at most {MaxBackoffSeconds}.");
            }
        }

        if (definition.Verification is { } verification)
        {
            if (!VerificationSchemes.TryParse(verification.Scheme, out var scheme))
            {
                Fail("verification.scheme", "verification.scheme must be one of standard-webhooks, github, stripe, shopify, hmac-sha256.");
            }
            else if (!VerificationSchemes.IsValidSecret(scheme, verification.Secret, out var secretError))
            {
                Fail("verification.secret", secretError ?? "verification.secret is invalid.");
            }
        }

        if (definition.MaxPayloadBytes is { } maxPayload && (maxPayload < 1 || maxPayload > MaxPayloadBytesLimit))
        {
            Fail("maxPayloadBytes", $"maxPayloadBytes must be an integer from 1 to {MaxPayloadBytesLimit}.");
        }

        if (definition.AdaptiveRate is { } adaptive)
        {
            var configuredRate = definition.RatePerSecond ?? 0;
            if (adaptive.DecreaseFactor is { } factor && (!double.IsFinite(factor) || factor < 0.01 || factor > 0.99))
            {
                Fail("adaptiveRate.decreaseFactor", "adaptiveRate.decreaseFactor must be from 0.01 to 0.99.");
            }

            if (adaptive.IncreasePerSecond is { } increase && (!double.IsFinite(increase) || increase <= 0 || increase > MaxRatePerSecond))
            {
                Fail("adaptiveRate.increasePerSecond", $"adaptiveRate.increasePerSecond must be above 0 and at most {MaxRatePerSecond}.");
            }

            if (adaptive.MinRatePerSecond is { } floor && (!double.IsFinite(floor) || floor <= 0 || floor > configuredRate))
            {
                Fail("adaptiveRate.minRatePerSecond", "adaptiveRate.minRatePerSecond must be above 0 and at most ratePerSecond.");
            }
        }

        if (definition.MaxSteps is { } maxSteps && (maxSteps < 1 || maxSteps > MaxStepsLimit))
        {
            Fail("maxSteps", $"maxSteps must be an integer from 1 to {MaxStepsLimit}.");
        }

        return errors;
    }

    /// <summary>The definition a PATCH produces: present fields replace, absent fields keep the current value.</summary>
    public static GroupDefinition Merge(GroupDefinition current, GroupDefinition patch) => new()
    {
        RatePerSecond = patch.RatePerSecond ?? current.RatePerSecond,
        Burst = patch.Burst ?? current.Burst,
        MaxConcurrency = patch.MaxConcurrency ?? current.MaxConcurrency,
        Target = patch.Target ?? current.Target,
        HandlerTimeoutSeconds = patch.HandlerTimeoutSeconds ?? current.HandlerTimeoutSeconds,
        MaxAttempts = patch.MaxAttempts ?? current.MaxAttempts,
        RetryBackoff = patch.RetryBackoff is { } backoff
            ? new RetryBackoffDefinition
            {
                InitialSeconds = backoff.InitialSeconds ?? current.RetryBackoff?.InitialSeconds,
                MaxSeconds = backoff.MaxSeconds ?? current.RetryBackoff?.MaxSeconds,
            }
            : current.RetryBackoff,
        Verification = patch.Verification ?? current.Verification,
        MaxPayloadBytes = patch.MaxPayloadBytes ?? current.MaxPayloadBytes,
        MaxSteps = patch.MaxSteps ?? current.MaxSteps,
        AdaptiveRate = patch.AdaptiveRate is { } adaptive
            ? new AdaptiveRateDefinition
            {
                Enabled = adaptive.Enabled ?? current.AdaptiveRate?.Enabled,
                DecreaseFactor = adaptive.DecreaseFactor ?? current.AdaptiveRate?.DecreaseFactor,
                IncreasePerSecond = adaptive.IncreasePerSecond ?? current.AdaptiveRate?.IncreasePerSecond,
                MinRatePerSecond = adaptive.MinRatePerSecond ?? current.AdaptiveRate?.MinRatePerSecond,
            }
            : current.AdaptiveRate,
    };
}

using System.Globalization;
using System.Text.RegularExpressions;

namespace ClusterQueue.Node.Ingress;

/// <summary>
/// When a message may first be processed: a delay in seconds or a not-before time, from the query
/// (<c>?delay=</c>, <c>?notBefore=</c>) or a header (<c>ClusterQueue-Delay</c>, <c>ClusterQueue-Not-Before</c>).
/// At most one of the four may be given, so a request never carries two answers to one question.
/// </summary>
public static partial class MessageSchedule
{
    public const string DelayQuery = "delay";
    public const string NotBeforeQuery = "notBefore";
    public const string DelayHeader = "ClusterQueue-Delay";
    public const string NotBeforeHeader = "ClusterQueue-Not-Before";

    /// <summary>
    /// The shortest delay or wait there is. A shorter positive one would round to nothing (stored times are whole
    /// milliseconds, TimeSpan has 100 ns ticks) and silently mean "now": it is refused instead, since a sender who
    /// writes 0.0000001 seconds most likely meant another unit.
    /// </summary>
    public const double MinimumSeconds = 0.001;

    /// <summary>The due time (null: at once), or the parameter at fault and why.</summary>
    public readonly record struct Result(DateTimeOffset? NotBefore, string? Field, string? Error);

    public static Result Read(HttpRequest request, DateTimeOffset now, TimeSpan maxDelay)
    {
        var given = new List<(string Field, string Value, bool IsDelay)>(1);
        Collect(given, DelayQuery, request.Query[DelayQuery], isDelay: true);
        Collect(given, NotBeforeQuery, request.Query[NotBeforeQuery], isDelay: false);
        Collect(given, DelayHeader, request.Headers[DelayHeader], isDelay: true);
        Collect(given, NotBeforeHeader, request.Headers[NotBeforeHeader], isDelay: false);
        if (given.Count == 0)
        {
            return default;
        }

        if (given.Count > 1)
        {
            return new(null, given[1].Field, $"Give one of {DelayQuery}, {NotBeforeQuery}, {DelayHeader} or {NotBeforeHeader}, not {string.Join(" and ", given.Select(g => g.Field))}.");
        }

        var (field, value, isDelay) = given[0];
        DateTimeOffset due;
        if (isDelay)
        {
            if (!TryParseSeconds(value, out var seconds))
            {
                return new(null, field, $"{field} must be a number of seconds (0 or more), such as 30 or 2.5.");
            }

            if (seconds is > 0 and < MinimumSeconds)
            {
                return new(null, field, $"{field} must be 0 or at least {MinimumSeconds} seconds (1 ms).");
            }

            if (seconds > maxDelay.TotalSeconds)
            {
                return new(null, field, $"{field} may be at most {maxDelay.TotalSeconds:0.###} seconds.");
            }

            due = now + TimeSpan.FromSeconds(seconds);
        }
        else
        {
            // An offset is required: a time without one would be read in this node's time zone, which the sender cannot know.
            if (!Rfc3339().IsMatch(value)
                || !DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.None, out due))
            {
                return new(null, field, $"{field} must be an RFC 3339 time with an offset, such as 2026-11-22T09:30:00Z.");
            }

            if (due - now > maxDelay)
            {
                return new(null, field, $"{field} may be at most {maxDelay.TotalSeconds:0.###} seconds ahead.");
            }
        }

        // A time already past means now.
        return new(due > now ? due : null, null, null);
    }

    /// <summary>A number of seconds as a sender writes it: digits with an optional decimal point, no sign, no exponent.</summary>
    internal static bool TryParseSeconds(string value, out double seconds) =>
        double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out seconds) && double.IsFinite(seconds);

    private static void Collect(List<(string, string, bool)> given, string field, Microsoft.Extensions.Primitives.StringValues values, bool isDelay)
    {
        if (values.Count > 0)
        {
            given.Add((field, values.Count == 1 ? values[0] ?? "" : string.Join(",", values.ToArray()), isDelay));
        }
    }

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,7})?([Zz]|[+-]\d{2}:\d{2})$")]
    private static partial Regex Rfc3339();
}

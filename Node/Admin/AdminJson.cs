using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using ClusterQueue.Node.Groups;
using Microsoft.AspNetCore.Http.HttpResults;

namespace ClusterQueue.Node.Admin;

/// <summary>
/// How /v1 reads a JSON body. Strictly: an unknown field, a field sent twice, or a number in a string is refused, so what
/// the node stores is what the sender meant. A refusal names the field in the contract's own words ("burst must be an
/// integer"), never a .NET type, whatever the serializer's message said.
/// </summary>
public static class AdminJson
{
    public const string NotJson = "The body must be JSON (Content-Type: application/json).";

    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        // A misspelt "ratePerSec" must not silently fall back to nothing.
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        NumberHandling = JsonNumberHandling.Strict,

        // Last-one-wins would let {"ratePerSecond":1, ..., "ratePerSecond":1000} pass a review that read its first half.
        // Names match case-insensitively, so "RatePerSecond" after "ratePerSecond" is the same field twice.
        AllowDuplicateProperties = false,
    };

    // Only to tell a repeated field from a bad value when a reading fails (see Describe).
    private static readonly JsonSerializerOptions AllowingDuplicates = new(Options) { AllowDuplicateProperties = true };

    /// <summary>Reads a JSON body; anything but a well-formed value of <typeparamref name="T"/> is a 400 naming the field at fault.</summary>
    public static async Task<(T? Value, ValidationProblem? Error)> ReadAsync<T>(HttpRequest request, CancellationToken cancellationToken)
        where T : class
    {
        if (!request.HasJsonContentType())
        {
            return (null, GroupProblems.Invalid("body", NotJson));
        }

        // Buffered whole (admin bodies are small): a failed reading is read again to say what was wrong.
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken);
        var body = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        try
        {
            var value = JsonSerializer.Deserialize<T>(body.Span, Options);
            return value is null ? (null, GroupProblems.Invalid("body", "The body must be a JSON object.")) : (value, null);
        }
        catch (JsonException ex)
        {
            var (field, why) = Describe<T>(ex, body);
            return (null, GroupProblems.Invalid(field, why));
        }
    }

    /// <summary>The field a failed reading names (its JSON path, in the contract's spelling) and why it was refused.</summary>
    private static (string Field, string Why) Describe<T>(JsonException ex, ReadOnlyMemory<byte> body)
    {
        var at = Resolve(Options.GetTypeInfo(typeof(T)), ex.Path);

        // A syntax error: the reader's own words name a token, never a type.
        if (ex.InnerException is JsonException)
        {
            return at.Field == "body"
                ? ("body", $"The body is not valid JSON: {FirstSentence(ex.Message)}")
                : (at.Field, $"Invalid JSON at '{at.Field}': {FirstSentence(ex.Message)}");
        }

        if (at.Unknown is { } name)
        {
            return (at.Field, at.Parent is null ? $"'{name}' is not a field of the body; check its spelling." : $"'{name}' is not a field of {at.Parent}; check its spelling.");
        }

        if (at.Type is null || at.Field == "body")
        {
            return ("body", "The body must be a JSON object.");
        }

        // The same failure when duplicates are allowed means the value itself is wrong; any other outcome means the
        // reading stopped at the field's second occurrence.
        if (!FailsAt<T>(body, ex.Path))
        {
            return (at.Field, $"{at.Field} appears more than once; send each field once.");
        }

        return (at.Field, $"{at.Field} must be {Expected(at.Type)}.");
    }

    private static bool FailsAt<T>(ReadOnlyMemory<byte> body, string? path)
    {
        try
        {
            JsonSerializer.Deserialize<T>(body.Span, AllowingDuplicates);
            return false;
        }
        catch (JsonException again)
        {
            return again.Path == path && again.InnerException is not JsonException;
        }
    }

    /// <summary>What a value of the type must be, in JSON's words.</summary>
    private static string Expected(JsonTypeInfo info)
    {
        var type = Nullable.GetUnderlyingType(info.Type) ?? info.Type;
        return type switch
        {
            _ when type == typeof(string) => "a string",
            _ when type == typeof(bool) => "true or false",
            _ when type == typeof(int) || type == typeof(long) || type == typeof(short) || type == typeof(byte)
                || type == typeof(uint) || type == typeof(ulong) || type == typeof(ushort) || type == typeof(sbyte) => "an integer",
            _ when type == typeof(double) || type == typeof(float) || type == typeof(decimal) => "a number",
            _ when type == typeof(DateTimeOffset) || type == typeof(DateTime) => "a date and time with an offset (RFC 3339, such as 2026-11-22T08:00:00Z)",
            _ when info.Kind == JsonTypeInfoKind.Enumerable => "an array",
            _ when info.Kind is JsonTypeInfoKind.Object or JsonTypeInfoKind.Dictionary => "an object",
            _ => "a value of the documented type",
        };
    }

    /// <summary>Where a JSON path leads in the body's type.</summary>
    /// <param name="Field">The path as the API names fields: "target.url", "messageIds[1]", or "body" for the whole.</param>
    /// <param name="Type">The type expected there; null when the path leaves the known fields.</param>
    /// <param name="Unknown">The name that is not a field, when the path ends at one.</param>
    /// <param name="Parent">The field holding the unknown one (null at the top).</param>
    private sealed record Location(string Field, JsonTypeInfo? Type, string? Unknown, string? Parent);

    private static Location Resolve(JsonTypeInfo root, string? path)
    {
        if (!TrySplit(path, out var segments))
        {
            return new Location("body", null, null, null);
        }

        var field = new System.Text.StringBuilder();
        var info = root;
        foreach (var segment in segments)
        {
            if (segment.Index is { } index)
            {
                field.Append(CultureInfo.InvariantCulture, $"[{index}]");
                info = info is { Kind: JsonTypeInfoKind.Enumerable, ElementType: { } element } ? Options.GetTypeInfo(element) : null;
                continue;
            }

            var parent = field.Length == 0 ? null : field.ToString();
            var property = info is { Kind: JsonTypeInfoKind.Object }
                ? info.Properties.FirstOrDefault(p => string.Equals(p.Name, segment.Name, StringComparison.OrdinalIgnoreCase))
                : null;
            if (field.Length > 0)
            {
                field.Append('.');
            }

            field.Append(property?.Name ?? segment.Name);
            if (property is null)
            {
                // Past an unknown name there is nothing to describe: the path names the first field the reader could not place.
                return new Location(field.ToString(), null, info is null ? null : segment.Name, parent);
            }

            info = Options.GetTypeInfo(property.PropertyType);
        }

        return new Location(field.Length == 0 ? "body" : field.ToString(), info, null, null);
    }

    private readonly record struct Segment(string? Name, int? Index);

    /// <summary>Splits the serializer's path ("$.target.url", "$.messageIds[1]", "$['odd.name']") into names and indexes.</summary>
    private static bool TrySplit(string? path, out List<Segment> segments)
    {
        segments = [];
        if (string.IsNullOrEmpty(path) || path[0] != '$')
        {
            return false;
        }

        var i = 1;
        while (i < path.Length)
        {
            if (path[i] == '.')
            {
                var end = path.IndexOfAny(['.', '['], i + 1);
                end = end < 0 ? path.Length : end;
                segments.Add(new Segment(path[(i + 1)..end], null));
                i = end;
            }
            else if (path.AsSpan(i).StartsWith("['"))
            {
                var end = path.IndexOf("']", i + 2, StringComparison.Ordinal);
                if (end < 0)
                {
                    return false;
                }

                segments.Add(new Segment(path[(i + 2)..end], null));
                i = end + 2;
            }
            else if (path[i] == '[')
            {
                var end = path.IndexOf(']', i + 1);
                if (end < 0 || !int.TryParse(path.AsSpan(i + 1, end - i - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                {
                    return false;
                }

                segments.Add(new Segment(null, index));
                i = end + 1;
            }
            else
            {
                return false;
            }
        }

        return true;
    }

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? message : message[..(end + 1)];
    }
}

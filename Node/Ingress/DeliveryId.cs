using System.Text.Json;
using ClusterQueue.Node.Ingress.Verification;

namespace ClusterQueue.Node.Ingress;

/// <summary>
/// Finds the sender's own id for a delivery, which stays the same when the sender retries: the key that
/// de-duplicates a retried webhook.
/// </summary>
internal static class DeliveryId
{
    /// <summary>Longer ids are refused rather than truncated: two different ids must never collide.</summary>
    public const int MaxLength = 256;

    // In the order they are consulted: scheme-specific ids first, the generic idempotency header last.
    private static readonly string[] Headers = ["webhook-id", "svix-id", "X-GitHub-Delivery", "X-Shopify-Webhook-Id", "Idempotency-Key"];

    /// <summary>
    /// The delivery id with the header it came from; both null when the request carries none. <c>Error</c> says why the
    /// id in <c>Source</c> cannot be used (sent more than once, too long): the request is refused rather than keyed by a
    /// guess. A Standard Webhooks delivery is keyed by the id of the header set its signature was checked with.
    /// </summary>
    public static (string? Id, string? Source, string? Error) Find(IHeaderDictionary headers, VerificationScheme? scheme, ReadOnlySpan<byte> body)
    {
        // Two copies of any delivery-id header: which one the sender meant is not ours to guess, and their joined text
        // ("a,b") is neither.
        foreach (var name in Headers)
        {
            if (headers[name].Count > 1)
            {
                return (null, name, $"{name} must be sent once; the request carries {headers[name].Count} of them.");
            }
        }

        IEnumerable<string> order = scheme == VerificationScheme.StandardWebhooks ? [StandardWebhooksHeaders.Of(headers).Id, .. Headers] : Headers;
        foreach (var name in order)
        {
            var value = headers[name].ToString();
            if (!string.IsNullOrWhiteSpace(value))
            {
                var id = value.Trim();
                return id.Length > MaxLength ? (null, name, $"{name} must be at most {MaxLength} characters.") : (id, name, null);
            }
        }

        // Stripe sends no delivery header; its event id is the top-level "id" of the JSON body.
        if (scheme == VerificationScheme.Stripe && TopLevelId(body) is { } eventId)
        {
            return eventId.Length > MaxLength ? (null, "body.id", $"body.id must be at most {MaxLength} characters.") : (eventId, "body.id", null);
        }

        return (null, null, null);
    }

    private static string? TopLevelId(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isId = reader.ValueTextEquals("id"u8);
                reader.Read();
                if (isId)
                {
                    return reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }

                reader.Skip();
            }
        }
        catch (JsonException)
        {
            // Not JSON: no id to find.
        }

        return null;
    }
}

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

    /// <summary>The delivery id with the header it came from, or null when the request carries none.</summary>
    public static (string? Id, string? Source) Find(IHeaderDictionary headers, VerificationScheme? scheme, ReadOnlySpan<byte> body)
    {
        foreach (var name in Headers)
        {
            var value = headers[name].ToString();
            if (!string.IsNullOrWhiteSpace(value))
            {
                return (value.Trim(), name);
            }
        }

        // Stripe sends no delivery header; its event id is the top-level "id" of the JSON body.
        return scheme == VerificationScheme.Stripe && TopLevelId(body) is { } eventId ? (eventId, "body.id") : (null, null);
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

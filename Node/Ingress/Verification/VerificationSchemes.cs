using System.Security.Cryptography;

namespace ClusterQueue.Node.Ingress.Verification;

/// <summary>Wire names and secret rules for <see cref="VerificationScheme"/>.</summary>
public static class VerificationSchemes
{
    /// <summary>Bounds what we store and what a stack-allocated key buffer must hold.</summary>
    public const int MaxSecretLength = 1024;

    private static readonly VerificationScheme[] All = Enum.GetValues<VerificationScheme>();

    public static bool TryParse(string? wire, out VerificationScheme scheme)
    {
        scheme = default;
        if (wire is null)
        {
            return false;
        }

        foreach (VerificationScheme candidate in All)
        {
            if (string.Equals(wire, ToWire(candidate), StringComparison.OrdinalIgnoreCase))
            {
                scheme = candidate;
                return true;
            }
        }

        return false;
    }

    public static string ToWire(VerificationScheme scheme) => scheme switch
    {
        VerificationScheme.StandardWebhooks => "standard-webhooks",
        VerificationScheme.GitHub => "github",
        VerificationScheme.Stripe => "stripe",
        VerificationScheme.Shopify => "shopify",
        VerificationScheme.HmacSha256 => "hmac-sha256",
        _ => throw new ArgumentOutOfRangeException(nameof(scheme), scheme, "Unknown verification scheme."),
    };

    /// <summary>Whether <paramref name="secret"/> can be stored for <paramref name="scheme"/>; <paramref name="error"/> says why not.</summary>
    public static bool IsValidSecret(VerificationScheme scheme, string? secret, out string? error)
    {
        if (string.IsNullOrEmpty(secret))
        {
            error = "secret is required";
            return false;
        }

        if (secret.Length > MaxSecretLength)
        {
            error = $"secret must be at most {MaxSecretLength} characters";
            return false;
        }

        if (scheme == VerificationScheme.StandardWebhooks)
        {
            Span<byte> key = stackalloc byte[StandardWebhooksKey.DecodeBufferBytes];
            bool decoded = StandardWebhooksKey.TryDecode(secret, key, out _);

            // The decoded key is secret material; don't leave it on the stack.
            CryptographicOperations.ZeroMemory(key);
            if (!decoded)
            {
                error = $"standard-webhooks secret must be '{StandardWebhooksKey.Prefix}<base64>' or plain base64 "
                    + $"decoding to {StandardWebhooksKey.MinBytes} to {StandardWebhooksKey.MaxBytes} bytes";
                return false;
            }
        }

        error = null;
        return true;
    }
}

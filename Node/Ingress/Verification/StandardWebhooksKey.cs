namespace ClusterQueue.Node.Ingress.Verification;

/// <summary>
/// Decodes a Standard Webhooks secret (<c>whsec_&lt;base64&gt;</c> or bare base64) to the HMAC key.
/// Shared so that the secret accepted at configuration time is exactly the one verification can use.
/// </summary>
internal static class StandardWebhooksKey
{
    public const string Prefix = "whsec_";
    public const int MinBytes = 1;
    public const int MaxBytes = 256;

    // Large enough for any base64 text of VerificationSchemes.MaxSecretLength chars, so a too-long key
    // is told apart from bad base64 by its decoded length rather than by a too-small buffer.
    public const int DecodeBufferBytes = VerificationSchemes.MaxSecretLength / 4 * 3;

    /// <summary>Decodes into <paramref name="destination"/> (at least <see cref="DecodeBufferBytes"/> long); false when the text is not base64 or decodes outside 1..256 bytes.</summary>
    public static bool TryDecode(ReadOnlySpan<char> secret, Span<byte> destination, out int written)
    {
        written = 0;
        if (secret.Length > VerificationSchemes.MaxSecretLength)
        {
            return false;
        }

        if (secret.StartsWith(Prefix, StringComparison.Ordinal))
        {
            secret = secret[Prefix.Length..];
        }

        if (!Convert.TryFromBase64Chars(secret, destination, out written))
        {
            written = 0;
            return false;
        }

        return written is >= MinBytes and <= MaxBytes;
    }
}

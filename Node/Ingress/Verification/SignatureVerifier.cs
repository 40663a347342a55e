// Why the checks are what they are:
// - MACs are compared with CryptographicOperations.FixedTimeEquals on decoded bytes, so the time a
//   rejection takes does not tell a forger how many leading bytes of a guessed signature were right.
// - Standard Webhooks and Stripe sign a timestamp. Rejecting stamps outside the tolerance, in either
//   direction, bounds how long a captured delivery can be replayed; a far-future stamp would otherwise
//   stretch that window.
// - The signature is checked before the timestamp, so OutsideTolerance means "authentic but stale".
//   Checking time first would save no hashing against an attacker, who can always send a current stamp.
// - A duplicated signature header is Invalid rather than "use one of them": which copy a proxy or the
//   sender meant is not ours to guess.
// - A secret that cannot be a key (empty, too long, undecodable) fails closed as Invalid.

using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Primitives;

namespace ClusterQueue.Node.Ingress.Verification;

/// <summary>Checks a delivery's signature headers against its raw body for one <see cref="VerificationScheme"/>.</summary>
public sealed class SignatureVerifier
{
    private const string GitHubHeader = "X-Hub-Signature-256";
    private const string StripeHeader = "Stripe-Signature";
    private const string ShopifyHeader = "X-Shopify-Hmac-Sha256";
    private const string PlainHeader = "X-Signature";
    private const string Sha256Prefix = "sha256=";

    private const int MacBytes = HMACSHA256.HashSizeInBytes;
    private const int HexMacChars = MacBytes * 2;

    // Room beyond one MAC so over-long base64 decodes and is rejected by its length, not by buffer size.
    private const int Base64DecodeBufferBytes = 64;

    // Headers longer than this are encoded into a heap buffer instead of the stack.
    private const int StackEncodeLimitBytes = 512;

    private static ReadOnlySpan<byte> Dot => "."u8;

    public SignatureCheck Verify(
        VerificationScheme scheme,
        string secret,
        IHeaderDictionary headers,
        ReadOnlySpan<byte> body,
        DateTimeOffset now,
        TimeSpan tolerance)
    {
        ArgumentNullException.ThrowIfNull(secret);
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentOutOfRangeException.ThrowIfLessThan(tolerance, TimeSpan.Zero);

        return scheme switch
        {
            VerificationScheme.StandardWebhooks => VerifyStandardWebhooks(secret, headers, body, now, tolerance),
            VerificationScheme.GitHub => VerifyGitHub(secret, headers, body),
            VerificationScheme.Stripe => VerifyStripe(secret, headers, body, now, tolerance),
            VerificationScheme.Shopify => VerifyShopify(secret, headers, body),
            VerificationScheme.HmacSha256 => VerifyPlain(secret, headers, body),
            _ => throw new ArgumentOutOfRangeException(nameof(scheme), scheme, "Unknown verification scheme."),
        };
    }

    private static SignatureCheck VerifyStandardWebhooks(
        string secret, IHeaderDictionary headers, ReadOnlySpan<byte> body, DateTimeOffset now, TimeSpan tolerance)
    {
        // webhook-* or, as Svix sends them, svix-*: one set whole, never a mix (see StandardWebhooksHeaders).
        StandardWebhooksHeaders names = StandardWebhooksHeaders.Of(headers);
        if (!TryReadSingle(headers, names.Id, out string id, out SignatureCheck failure)
            || !TryReadSingle(headers, names.Timestamp, out string timestamp, out failure)
            || !TryReadSingle(headers, names.Signature, out string signatures, out failure))
        {
            return failure;
        }

        if (!TryParseUnixSeconds(timestamp, out long unixSeconds))
        {
            return SignatureCheck.Invalid;
        }

        Span<byte> expected = stackalloc byte[MacBytes];
        Span<byte> key = stackalloc byte[StandardWebhooksKey.DecodeBufferBytes];
        try
        {
            if (!StandardWebhooksKey.TryDecode(secret, key, out int keyLength))
            {
                return SignatureCheck.Invalid;
            }

            // Signed content is "{id}.{timestamp}.{body}"; appending in pieces avoids copying the body.
            using IncrementalHash hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key[..keyLength]);
            AppendUtf8(hmac, id);
            hmac.AppendData(Dot);
            AppendUtf8(hmac, timestamp);
            hmac.AppendData(Dot);
            hmac.AppendData(body);
            hmac.GetHashAndReset(expected);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }

        if (!AnyStandardSignatureMatches(signatures, expected))
        {
            return SignatureCheck.Invalid;
        }

        return IsWithinTolerance(unixSeconds, now, tolerance) ? SignatureCheck.Valid : SignatureCheck.OutsideTolerance;
    }

    // The header is a space-separated list of "version,signature"; senders list several while rotating
    // secrets, and versions other than v1 (e.g. asymmetric v1a) are not ours to check.
    private static bool AnyStandardSignatureMatches(string header, ReadOnlySpan<byte> expected)
    {
        ReadOnlySpan<char> list = header;
        Span<byte> received = stackalloc byte[MacBytes];
        foreach (Range range in list.Split(' '))
        {
            ReadOnlySpan<char> entry = list[range];
            int comma = entry.IndexOf(',');
            if (comma < 0 || entry[..comma] is not "v1")
            {
                continue;
            }

            if (TryDecodeBase64Mac(entry[(comma + 1)..], received)
                && CryptographicOperations.FixedTimeEquals(received, expected))
            {
                return true;
            }
        }

        return false;
    }

    private static SignatureCheck VerifyGitHub(string secret, IHeaderDictionary headers, ReadOnlySpan<byte> body)
    {
        if (!TryReadSingle(headers, GitHubHeader, out string header, out SignatureCheck failure))
        {
            return failure;
        }

        ReadOnlySpan<char> value = header.AsSpan().Trim();
        Span<byte> received = stackalloc byte[MacBytes];
        if (!value.StartsWith(Sha256Prefix, StringComparison.OrdinalIgnoreCase)
            || !TryDecodeHexMac(value[Sha256Prefix.Length..], received))
        {
            return SignatureCheck.Invalid;
        }

        return MatchBodyMac(secret, body, received);
    }

    private static SignatureCheck VerifyShopify(string secret, IHeaderDictionary headers, ReadOnlySpan<byte> body)
    {
        if (!TryReadSingle(headers, ShopifyHeader, out string header, out SignatureCheck failure))
        {
            return failure;
        }

        Span<byte> received = stackalloc byte[MacBytes];
        if (!TryDecodeBase64Mac(header.AsSpan().Trim(), received))
        {
            return SignatureCheck.Invalid;
        }

        return MatchBodyMac(secret, body, received);
    }

    // Our own scheme takes whatever encoding the sender's HTTP client library makes easiest:
    // hex (optionally "sha256="-prefixed, as GitHub does) or base64. A 32-byte MAC is 64 hex chars,
    // so the length tells the encodings apart.
    private static SignatureCheck VerifyPlain(string secret, IHeaderDictionary headers, ReadOnlySpan<byte> body)
    {
        if (!TryReadSingle(headers, PlainHeader, out string header, out SignatureCheck failure))
        {
            return failure;
        }

        ReadOnlySpan<char> value = header.AsSpan().Trim();
        if (value.StartsWith(Sha256Prefix, StringComparison.OrdinalIgnoreCase))
        {
            value = value[Sha256Prefix.Length..];
        }

        Span<byte> received = stackalloc byte[MacBytes];
        bool decoded = value.Length == HexMacChars
            ? TryDecodeHexMac(value, received)
            : TryDecodeBase64Mac(value, received);

        return decoded ? MatchBodyMac(secret, body, received) : SignatureCheck.Invalid;
    }

    private static SignatureCheck VerifyStripe(
        string secret, IHeaderDictionary headers, ReadOnlySpan<byte> body, DateTimeOffset now, TimeSpan tolerance)
    {
        if (!TryReadSingle(headers, StripeHeader, out string header, out SignatureCheck failure))
        {
            return failure;
        }

        if (!TryFindStripeTimestamp(header, out ReadOnlySpan<char> timestamp)
            || !TryParseUnixSeconds(timestamp, out long unixSeconds)
            || !IsUsableUtf8Secret(secret))
        {
            return SignatureCheck.Invalid;
        }

        Span<byte> expected = stackalloc byte[MacBytes];
        Span<byte> key = stackalloc byte[Encoding.UTF8.GetByteCount(secret)];
        try
        {
            Encoding.UTF8.GetBytes(secret, key);

            // Signed payload is "{t}.{body}"; appending in pieces avoids copying the body.
            using IncrementalHash hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
            AppendUtf8(hmac, timestamp);
            hmac.AppendData(Dot);
            hmac.AppendData(body);
            hmac.GetHashAndReset(expected);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }

        if (!AnyStripeSignatureMatches(header, expected))
        {
            return SignatureCheck.Invalid;
        }

        return IsWithinTolerance(unixSeconds, now, tolerance) ? SignatureCheck.Valid : SignatureCheck.OutsideTolerance;
    }

    // Exactly one t= item: with two, which one the signature covers would be ambiguous.
    private static bool TryFindStripeTimestamp(string header, out ReadOnlySpan<char> timestamp)
    {
        timestamp = default;
        bool found = false;
        ReadOnlySpan<char> items = header;
        foreach (Range range in items.Split(','))
        {
            if (!TrySplitStripeItem(items[range], out ReadOnlySpan<char> name, out ReadOnlySpan<char> value)
                || name is not "t")
            {
                continue;
            }

            if (found)
            {
                return false;
            }

            timestamp = value;
            found = true;
        }

        return found;
    }

    // Stripe lists several v1 items while an endpoint secret is being rolled; v0 and unknown items are ignored.
    private static bool AnyStripeSignatureMatches(string header, ReadOnlySpan<byte> expected)
    {
        ReadOnlySpan<char> items = header;
        Span<byte> received = stackalloc byte[MacBytes];
        foreach (Range range in items.Split(','))
        {
            if (TrySplitStripeItem(items[range], out ReadOnlySpan<char> name, out ReadOnlySpan<char> value)
                && name is "v1"
                && TryDecodeHexMac(value, received)
                && CryptographicOperations.FixedTimeEquals(received, expected))
            {
                return true;
            }
        }

        return false;
    }

    private static bool TrySplitStripeItem(ReadOnlySpan<char> item, out ReadOnlySpan<char> name, out ReadOnlySpan<char> value)
    {
        item = item.Trim();
        int equals = item.IndexOf('=');
        if (equals <= 0)
        {
            name = default;
            value = default;
            return false;
        }

        name = item[..equals];
        value = item[(equals + 1)..];
        return true;
    }

    private static SignatureCheck MatchBodyMac(string secret, ReadOnlySpan<byte> body, ReadOnlySpan<byte> received)
    {
        if (!IsUsableUtf8Secret(secret))
        {
            return SignatureCheck.Invalid;
        }

        Span<byte> expected = stackalloc byte[MacBytes];
        Span<byte> key = stackalloc byte[Encoding.UTF8.GetByteCount(secret)];
        try
        {
            Encoding.UTF8.GetBytes(secret, key);
            HMACSHA256.HashData(key, body, expected);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }

        return CryptographicOperations.FixedTimeEquals(received, expected) ? SignatureCheck.Valid : SignatureCheck.Invalid;
    }

    // An empty key would let anyone sign; the length cap also bounds the stack-allocated key.
    private static bool IsUsableUtf8Secret(string secret) =>
        secret.Length is > 0 and <= VerificationSchemes.MaxSecretLength;

    /// <summary>Reads a header that must appear once; <paramref name="failure"/> is meaningful only when this returns false.</summary>
    private static bool TryReadSingle(IHeaderDictionary headers, string name, out string value, out SignatureCheck failure)
    {
        StringValues values = headers[name];
        value = string.Empty;
        if (values.Count > 1)
        {
            failure = SignatureCheck.Invalid;
            return false;
        }

        string? single = values.Count == 1 ? values[0] : null;
        if (string.IsNullOrWhiteSpace(single))
        {
            failure = SignatureCheck.Missing;
            return false;
        }

        value = single;
        failure = SignatureCheck.Valid;
        return true;
    }

    // Digits only: no sign, spaces or exponent, so the text that was signed is the number we check.
    private static bool TryParseUnixSeconds(ReadOnlySpan<char> text, out long unixSeconds) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out unixSeconds);

    private static bool IsWithinTolerance(long unixSeconds, DateTimeOffset now, TimeSpan tolerance)
    {
        // Senders stamp whole seconds; double keeps an absurd stamp from overflowing the subtraction.
        double skewSeconds = Math.Abs((double)now.ToUnixTimeSeconds() - unixSeconds);
        return skewSeconds <= tolerance.TotalSeconds;
    }

    private static bool TryDecodeHexMac(ReadOnlySpan<char> hex, Span<byte> mac) =>
        hex.Length == HexMacChars
        && Convert.FromHexString(hex, mac, out _, out int written) == OperationStatus.Done
        && written == MacBytes;

    private static bool TryDecodeBase64Mac(ReadOnlySpan<char> text, Span<byte> mac)
    {
        Span<byte> buffer = stackalloc byte[Base64DecodeBufferBytes];
        if (!Convert.TryFromBase64Chars(text, buffer, out int written) || written != MacBytes)
        {
            return false;
        }

        buffer[..MacBytes].CopyTo(mac);
        return true;
    }

    private static void AppendUtf8(IncrementalHash hmac, ReadOnlySpan<char> text)
    {
        int maxBytes = Encoding.UTF8.GetMaxByteCount(text.Length);
        Span<byte> buffer = maxBytes <= StackEncodeLimitBytes ? stackalloc byte[StackEncodeLimitBytes] : new byte[maxBytes];
        int written = Encoding.UTF8.GetBytes(text, buffer);
        hmac.AppendData(buffer[..written]);
    }
}

using ClusterQueue.Node.Ingress.Verification;

namespace ClusterQueue.Tests.Ingress;

public sealed class VerificationSchemesTests
{
    [Theory]
    [InlineData("standard-webhooks", VerificationScheme.StandardWebhooks)]
    [InlineData("github", VerificationScheme.GitHub)]
    [InlineData("stripe", VerificationScheme.Stripe)]
    [InlineData("shopify", VerificationScheme.Shopify)]
    [InlineData("hmac-sha256", VerificationScheme.HmacSha256)]
    [InlineData("Standard-Webhooks", VerificationScheme.StandardWebhooks)]
    [InlineData("GitHub", VerificationScheme.GitHub)]
    [InlineData("STRIPE", VerificationScheme.Stripe)]
    [InlineData("HMAC-SHA256", VerificationScheme.HmacSha256)]
    public void TryParse_WithWireNameInAnyCase_ReturnsScheme(string wire, VerificationScheme expected)
    {
        bool parsed = VerificationSchemes.TryParse(wire, out VerificationScheme scheme);

        Assert.True(parsed);
        Assert.Equal(expected, scheme);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("hmac")]
    [InlineData("standardwebhooks")]
    [InlineData("StandardWebhooks")]
    [InlineData(" github")]
    [InlineData("1")]
    public void TryParse_WithUnknownName_ReturnsFalse(string? wire)
    {
        bool parsed = VerificationSchemes.TryParse(wire, out _);

        Assert.False(parsed);
    }

    [Theory]
    [InlineData(VerificationScheme.StandardWebhooks, "standard-webhooks")]
    [InlineData(VerificationScheme.GitHub, "github")]
    [InlineData(VerificationScheme.Stripe, "stripe")]
    [InlineData(VerificationScheme.Shopify, "shopify")]
    [InlineData(VerificationScheme.HmacSha256, "hmac-sha256")]
    public void ToWire_ForEachScheme_ReturnsLowercaseWireName(VerificationScheme scheme, string expected)
    {
        Assert.Equal(expected, VerificationSchemes.ToWire(scheme));
    }

    [Fact]
    public void ToWire_ForEverySchemeValue_RoundTripsThroughTryParse()
    {
        foreach (VerificationScheme scheme in Enum.GetValues<VerificationScheme>())
        {
            Assert.True(VerificationSchemes.TryParse(VerificationSchemes.ToWire(scheme), out VerificationScheme parsed));
            Assert.Equal(scheme, parsed);
        }
    }

    [Fact]
    public void ToWire_WithUndefinedScheme_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => VerificationSchemes.ToWire((VerificationScheme)99));
    }

    [Theory]
    [InlineData(VerificationScheme.GitHub, null)]
    [InlineData(VerificationScheme.GitHub, "")]
    [InlineData(VerificationScheme.StandardWebhooks, null)]
    [InlineData(VerificationScheme.HmacSha256, "")]
    public void IsValidSecret_WithNullOrEmpty_ReturnsRequiredError(VerificationScheme scheme, string? secret)
    {
        bool valid = VerificationSchemes.IsValidSecret(scheme, secret, out string? error);

        Assert.False(valid);
        Assert.Equal("secret is required", error);
    }

    [Theory]
    [InlineData(VerificationScheme.GitHub)]
    [InlineData(VerificationScheme.Stripe)]
    [InlineData(VerificationScheme.Shopify)]
    [InlineData(VerificationScheme.HmacSha256)]
    [InlineData(VerificationScheme.StandardWebhooks)]
    public void IsValidSecret_WithMoreThan1024Chars_ReturnsLengthError(VerificationScheme scheme)
    {
        bool valid = VerificationSchemes.IsValidSecret(scheme, new string('A', 1025), out string? error);

        Assert.False(valid);
        Assert.Contains("1024", error);
    }

    [Theory]
    [InlineData(VerificationScheme.GitHub)]
    [InlineData(VerificationScheme.Stripe)]
    [InlineData(VerificationScheme.Shopify)]
    [InlineData(VerificationScheme.HmacSha256)]
    public void IsValidSecret_WithExactly1024CharsForTextSecretScheme_IsValid(VerificationScheme scheme)
    {
        bool valid = VerificationSchemes.IsValidSecret(scheme, new string('x', 1024), out string? error);

        Assert.True(valid);
        Assert.Null(error);
    }

    [Theory]
    [InlineData(VerificationScheme.GitHub, "It's a Secret to Everybody")]
    [InlineData(VerificationScheme.Stripe, "whsec_test_secret")]
    [InlineData(VerificationScheme.Shopify, "shpss_not base64!")]
    [InlineData(VerificationScheme.HmacSha256, "ü")]
    public void IsValidSecret_WithTextSecretForTextSecretScheme_IsValid(VerificationScheme scheme, string secret)
    {
        bool valid = VerificationSchemes.IsValidSecret(scheme, secret, out string? error);

        Assert.True(valid);
        Assert.Null(error);
    }

    [Theory]
    [InlineData("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    [InlineData("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    [InlineData("whsec_AA==")]
    public void IsValidSecret_StandardWebhooksWithBase64Key_IsValid(string secret)
    {
        bool valid = VerificationSchemes.IsValidSecret(VerificationScheme.StandardWebhooks, secret, out string? error);

        Assert.True(valid);
        Assert.Null(error);
    }

    [Fact]
    public void IsValidSecret_StandardWebhooksWith256ByteKey_IsValid()
    {
        string secret = "whsec_" + Convert.ToBase64String(new byte[256]);

        bool valid = VerificationSchemes.IsValidSecret(VerificationScheme.StandardWebhooks, secret, out string? error);

        Assert.True(valid);
        Assert.Null(error);
    }

    [Theory]
    [InlineData("whsec_")]
    [InlineData("whsec_not base64!")]
    [InlineData("It's a Secret to Everybody")]
    [InlineData("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS")]
    [InlineData("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    public void IsValidSecret_StandardWebhooksWithNonBase64_ReturnsFormatError(string secret)
    {
        bool valid = VerificationSchemes.IsValidSecret(VerificationScheme.StandardWebhooks, secret, out string? error);

        Assert.False(valid);
        Assert.NotNull(error);
        Assert.Contains("whsec_<base64>", error);
        Assert.Contains("1 to 256 bytes", error);
    }

    [Fact]
    public void IsValidSecret_StandardWebhooksWith257ByteKey_ReturnsFormatError()
    {
        string secret = "whsec_" + Convert.ToBase64String(new byte[257]);

        bool valid = VerificationSchemes.IsValidSecret(VerificationScheme.StandardWebhooks, secret, out string? error);

        Assert.False(valid);
        Assert.Contains("1 to 256 bytes", error);
    }
}

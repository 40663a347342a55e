using System.Security.Cryptography;
using System.Text;
using ClusterQueue.Node.Ingress.Verification;
using Microsoft.AspNetCore.Http;

namespace ClusterQueue.Tests.Ingress;

public sealed class SignatureVerifierTests
{
    private static readonly TimeSpan Tolerance = TimeSpan.FromMinutes(5);
    private readonly SignatureVerifier _verifier = new();

    // Standard Webhooks reference vector: the "sign function works" test in
    // github.com/standard-webhooks/standard-webhooks, libraries/javascript/src/webhook.test.ts.
    private const string StandardSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    private const string StandardId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    private const long StandardTimestamp = 1614265330;
    private const string StandardBody = """{"test": 2432232314}""";
    private const string StandardSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    // GitHub's published example from "Validating webhook deliveries" (docs.github.com/webhooks/using-webhooks/
    // validating-webhook-deliveries, "Testing the webhook payload validation").
    private const string GitHubSecret = "It's a Secret to Everybody";
    private const string GitHubBody = "Hello, World!";
    private const string GitHubHex = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    private const string GitHubSignature = "sha256=" + GitHubHex;

    // Stripe publishes no fixed secret/payload/signature triple, so this one was computed once with
    //   printf '%s' '1614265330.{"id":"evt_test","object":"event"}' | openssl dgst -sha256 -hmac 'whsec_test_secret'
    // (Stripe signs "{t}.{body}" with the whole whsec_ string as the UTF-8 key.)
    private const string StripeSecret = "whsec_test_secret";
    private const long StripeTimestamp = 1614265330;
    private const string StripeBody = """{"id":"evt_test","object":"event"}""";
    private const string StripeHex = "fbd6bf5496b9d6310e422a2c072578f95f5eb492111ab57a5510e9cd79c1b304";

    // Shopify publishes no fixed vector either; computed once with
    //   printf '%s' '{"id":820982911946154508,"topic":"orders/create"}' \
    //     | openssl dgst -sha256 -hmac 'shpss_test_secret' -binary | base64
    private const string ShopifySecret = "shpss_test_secret";
    private const string ShopifyBody = """{"id":820982911946154508,"topic":"orders/create"}""";
    private const string ShopifySignature = "DyCZHwhBMborrvH9V041dO/poDNS0e8cUWwh3epcPkc=";

    // Our own scheme reuses GitHub's example; base64 of the same MAC computed with
    //   python3 -c "import base64; print(base64.b64encode(bytes.fromhex('757107ea...8b043e17')))"
    private const string GitHubBase64 = "dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEPhc=";

    private static readonly DateTimeOffset StandardNow = DateTimeOffset.FromUnixTimeSeconds(StandardTimestamp);
    private static readonly DateTimeOffset StripeNow = DateTimeOffset.FromUnixTimeSeconds(StripeTimestamp);

    // ---- Standard Webhooks ----

    [Fact]
    public void StandardWebhooks_WithReferenceLibraryVector_IsValid()
    {
        SignatureCheck result = VerifyStandard(StandardSecret, StandardHeaders(), StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Valid, result);
    }

    [Fact]
    public void StandardWebhooks_WithSecretWithoutWhsecPrefix_IsValid()
    {
        SignatureCheck result = VerifyStandard("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", StandardHeaders(), StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Valid, result);
    }

    [Fact]
    public void StandardWebhooks_WithFreshlySignedDeliveryAndLongNonAsciiId_IsValid()
    {
        // A long id goes through the heap-buffer path when the signed prefix is hashed.
        byte[] key = RandomNumberGenerator.GetBytes(32);
        string secret = "whsec_" + Convert.ToBase64String(key);
        string id = "msg_ü_" + new string('x', 600);
        long timestamp = StandardTimestamp + 1000;
        string body = """{"event":"created"}""";
        HeaderDictionary headers = StandardHeaders(id: id, timestamp: timestamp.ToString(), signature: SignStandard(key, id, timestamp, body));

        SignatureCheck result = VerifyStandard(secret, headers, body, DateTimeOffset.FromUnixTimeSeconds(timestamp));

        Assert.Equal(SignatureCheck.Valid, result);
    }

    [Fact]
    public void StandardWebhooks_WithFlippedBodyByte_ReturnsInvalid()
    {
        byte[] body = Encoding.UTF8.GetBytes(StandardBody);
        Assert.Equal(SignatureCheck.Valid, Verify(VerificationScheme.StandardWebhooks, StandardSecret, StandardHeaders(), body, StandardNow));

        body[^2] ^= 0x01;

        Assert.Equal(SignatureCheck.Invalid, Verify(VerificationScheme.StandardWebhooks, StandardSecret, StandardHeaders(), body, StandardNow));
    }

    [Fact]
    public void StandardWebhooks_WithWrongSecret_ReturnsInvalid()
    {
        string otherSecret = "whsec_" + Convert.ToBase64String(Encoding.UTF8.GetBytes("not the right key at all!"));

        SignatureCheck result = VerifyStandard(otherSecret, StandardHeaders(), StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Fact]
    public void StandardWebhooks_WithChangedMessageId_ReturnsInvalid()
    {
        SignatureCheck result = VerifyStandard(StandardSecret, StandardHeaders(id: "msg_someone_else"), StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Theory]
    [InlineData("webhook-id")]
    [InlineData("webhook-timestamp")]
    [InlineData("webhook-signature")]
    public void StandardWebhooks_WithHeaderAbsent_ReturnsMissing(string header)
    {
        HeaderDictionary headers = StandardHeaders();
        headers.Remove(header);

        SignatureCheck result = VerifyStandard(StandardSecret, headers, StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Missing, result);
    }

    [Theory]
    [InlineData("webhook-id")]
    [InlineData("webhook-timestamp")]
    [InlineData("webhook-signature")]
    public void StandardWebhooks_WithHeaderEmpty_ReturnsMissing(string header)
    {
        HeaderDictionary headers = StandardHeaders();
        headers[header] = "";

        SignatureCheck result = VerifyStandard(StandardSecret, headers, StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Missing, result);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("v1,")]
    [InlineData("v1")]
    [InlineData("v1,not*base64!")]
    [InlineData("v1,g0hM9SsE")]
    [InlineData("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=AAAA")]
    [InlineData(",,, ,")]
    public void StandardWebhooks_WithGarbageSignature_ReturnsInvalid(string signature)
    {
        SignatureCheck result = VerifyStandard(StandardSecret, StandardHeaders(signature: signature), StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Theory]
    [InlineData("hello")]
    [InlineData("-1614265330")]
    [InlineData("1614265330.5")]
    [InlineData("99999999999999999999999")]
    public void StandardWebhooks_WithMalformedTimestamp_ReturnsInvalid(string timestamp)
    {
        SignatureCheck result = VerifyStandard(StandardSecret, StandardHeaders(timestamp: timestamp), StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Fact]
    public void StandardWebhooks_WithTimestampOutsideToleranceInPast_ReturnsOutsideTolerance()
    {
        DateTimeOffset now = StandardNow + Tolerance + TimeSpan.FromSeconds(1);

        SignatureCheck result = VerifyStandard(StandardSecret, StandardHeaders(), StandardBody, now);

        Assert.Equal(SignatureCheck.OutsideTolerance, result);
    }

    [Fact]
    public void StandardWebhooks_WithTimestampOutsideToleranceInFuture_ReturnsOutsideTolerance()
    {
        DateTimeOffset now = StandardNow - Tolerance - TimeSpan.FromSeconds(1);

        SignatureCheck result = VerifyStandard(StandardSecret, StandardHeaders(), StandardBody, now);

        Assert.Equal(SignatureCheck.OutsideTolerance, result);
    }

    [Theory]
    [InlineData(300)]
    [InlineData(-300)]
    public void StandardWebhooks_WithTimestampExactlyAtTolerance_IsValid(int offsetSeconds)
    {
        DateTimeOffset now = StandardNow + TimeSpan.FromSeconds(offsetSeconds);

        SignatureCheck result = VerifyStandard(StandardSecret, StandardHeaders(), StandardBody, now);

        Assert.Equal(SignatureCheck.Valid, result);
    }

    [Fact]
    public void StandardWebhooks_WithForgedSignatureAndStaleTimestamp_ReturnsInvalid()
    {
        // A forger learns nothing from "too old": the signature is judged first.
        DateTimeOffset now = StandardNow + TimeSpan.FromDays(1);
        HeaderDictionary headers = StandardHeaders(signature: "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=");

        SignatureCheck result = VerifyStandard(StandardSecret, headers, StandardBody, now);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Fact]
    public void StandardWebhooks_WithSeveralSignaturesOneMatching_IsValid()
    {
        string signatures = string.Join(' ',
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            StandardSignature,
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=");

        SignatureCheck result = VerifyStandard(StandardSecret, StandardHeaders(signature: signatures), StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Valid, result);
    }

    [Fact]
    public void StandardWebhooks_WithSeveralSignaturesNoneMatching_ReturnsInvalid()
    {
        string signatures = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1,dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEPhc=";

        SignatureCheck result = VerifyStandard(StandardSecret, StandardHeaders(signature: signatures), StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Fact]
    public void StandardWebhooks_WithMatchingSignatureUnderOtherVersion_ReturnsInvalid()
    {
        string signature = "v1a," + StandardSignature["v1,".Length..];

        SignatureCheck result = VerifyStandard(StandardSecret, StandardHeaders(signature: signature), StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Fact]
    public void StandardWebhooks_WithDuplicatedSignatureHeader_ReturnsInvalid()
    {
        HeaderDictionary headers = StandardHeaders();
        headers["webhook-signature"] = new(new[] { StandardSignature, StandardSignature });

        SignatureCheck result = VerifyStandard(StandardSecret, headers, StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Theory]
    [InlineData("whsec_")]
    [InlineData("whsec_not base64 at all!")]
    [InlineData("")]
    public void StandardWebhooks_WithUnusableSecret_ReturnsInvalid(string secret)
    {
        SignatureCheck result = VerifyStandard(secret, StandardHeaders(), StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Fact]
    public void StandardWebhooks_WithMultiMebibyteBody_IsValid()
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        byte[] body = RandomNumberGenerator.GetBytes(4 * 1024 * 1024);
        string signed = $"{StandardId}.{StandardTimestamp}.";
        byte[] content = [.. Encoding.UTF8.GetBytes(signed), .. body];
        byte[] mac = HMACSHA256.HashData(key, content);
        HeaderDictionary headers = StandardHeaders(signature: "v1," + Convert.ToBase64String(mac));

        SignatureCheck result = Verify(VerificationScheme.StandardWebhooks, Convert.ToBase64String(key), headers, body, StandardNow);

        Assert.Equal(SignatureCheck.Valid, result);
    }

    // ---- Svix (standard-webhooks under svix-* names) ----

    [Fact]
    public void StandardWebhooks_WithSvixHeaders_IsValid()
    {
        SignatureCheck result = VerifyStandard(StandardSecret, SvixHeaders(), StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Valid, result);
    }

    [Fact]
    public void StandardWebhooks_WithSvixHeadersAndFlippedBodyByte_ReturnsInvalid()
    {
        SignatureCheck result = VerifyStandard(StandardSecret, SvixHeaders(), StandardBody.Replace('2', '3'), StandardNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Fact]
    public void StandardWebhooks_WithSvixHeadersOutsideTolerance_ReturnsOutsideTolerance()
    {
        SignatureCheck result = VerifyStandard(StandardSecret, SvixHeaders(), StandardBody, StandardNow + Tolerance + TimeSpan.FromSeconds(1));

        Assert.Equal(SignatureCheck.OutsideTolerance, result);
    }

    [Theory]
    [InlineData("svix-id", "webhook-id")]
    [InlineData("svix-timestamp", "webhook-timestamp")]
    [InlineData("svix-signature", "webhook-signature")]
    public void StandardWebhooks_WithOneSvixHeaderUnderItsWebhookName_ReturnsMissing(string svix, string webhook)
    {
        // A set is used whole: a webhook-* header means the webhook-* set, whose other two headers are then missing.
        HeaderDictionary headers = SvixHeaders();
        headers[webhook] = headers[svix];
        headers.Remove(svix);

        SignatureCheck result = VerifyStandard(StandardSecret, headers, StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Missing, result);
    }

    [Fact]
    public void StandardWebhooks_WithWebhookIdButSvixTimestampAndSignature_IsNotValid()
    {
        HeaderDictionary headers = new()
        {
            ["webhook-id"] = StandardId,
            ["svix-timestamp"] = StandardTimestamp.ToString(),
            ["svix-signature"] = StandardSignature,
        };

        SignatureCheck result = VerifyStandard(StandardSecret, headers, StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Missing, result);
    }

    [Fact]
    public void StandardWebhooks_WithSvixSetAndAStrayWebhookSignature_ChecksTheWebhookSetOnly()
    {
        // Never a mix: a forged webhook-signature beside a valid svix set does not borrow the svix id and timestamp.
        HeaderDictionary headers = SvixHeaders();
        headers["webhook-signature"] = StandardSignature;

        SignatureCheck result = VerifyStandard(StandardSecret, headers, StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Missing, result);
    }

    [Fact]
    public void StandardWebhooks_WithDuplicatedSvixSignatureHeader_ReturnsInvalid()
    {
        HeaderDictionary headers = SvixHeaders();
        headers["svix-signature"] = new(new[] { StandardSignature, StandardSignature });

        SignatureCheck result = VerifyStandard(StandardSecret, headers, StandardBody, StandardNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    // ---- GitHub ----

    [Fact]
    public void GitHub_WithPublishedExample_IsValid()
    {
        SignatureCheck result = VerifyText(VerificationScheme.GitHub, GitHubSecret, GitHubHeaders(GitHubSignature), GitHubBody);

        Assert.Equal(SignatureCheck.Valid, result);
    }

    [Fact]
    public void GitHub_WithUppercaseHex_IsValid()
    {
        SignatureCheck result = VerifyText(
            VerificationScheme.GitHub, GitHubSecret, GitHubHeaders("sha256=" + GitHubHex.ToUpperInvariant()), GitHubBody);

        Assert.Equal(SignatureCheck.Valid, result);
    }

    [Fact]
    public void GitHub_WithFlippedBodyByte_ReturnsInvalid()
    {
        byte[] body = Encoding.UTF8.GetBytes(GitHubBody);
        Assert.Equal(SignatureCheck.Valid, Verify(VerificationScheme.GitHub, GitHubSecret, GitHubHeaders(GitHubSignature), body));

        body[0] ^= 0x01;

        Assert.Equal(SignatureCheck.Invalid, Verify(VerificationScheme.GitHub, GitHubSecret, GitHubHeaders(GitHubSignature), body));
    }

    [Fact]
    public void GitHub_WithWrongSecret_ReturnsInvalid()
    {
        SignatureCheck result = VerifyText(VerificationScheme.GitHub, "It's a secret to everybody", GitHubHeaders(GitHubSignature), GitHubBody);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Fact]
    public void GitHub_WithHeaderAbsent_ReturnsMissing()
    {
        SignatureCheck result = VerifyText(VerificationScheme.GitHub, GitHubSecret, new HeaderDictionary(), GitHubBody);

        Assert.Equal(SignatureCheck.Missing, result);
    }

    [Fact]
    public void GitHub_WithOnlyLegacySha1Header_ReturnsMissing()
    {
        HeaderDictionary headers = new() { ["X-Hub-Signature"] = "sha1=" + new string('0', 40) };

        SignatureCheck result = VerifyText(VerificationScheme.GitHub, GitHubSecret, headers, GitHubBody);

        Assert.Equal(SignatureCheck.Missing, result);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("sha256=")]
    [InlineData(GitHubHex)]
    [InlineData("sha1=" + GitHubHex)]
    [InlineData("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1")]
    [InlineData("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17ab")]
    [InlineData("sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")]
    [InlineData("sha256=dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEPhc=")]
    public void GitHub_WithGarbageHeader_ReturnsInvalid(string header)
    {
        SignatureCheck result = VerifyText(VerificationScheme.GitHub, GitHubSecret, GitHubHeaders(header), GitHubBody);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Fact]
    public void GitHub_WithEmptySecret_ReturnsInvalidEvenForMatchingMac()
    {
        // An empty key is a key anyone can sign with; verification must fail closed.
        string emptyKeyMac = Convert.ToHexStringLower(HMACSHA256.HashData(Array.Empty<byte>(), Encoding.UTF8.GetBytes(GitHubBody)));

        SignatureCheck result = VerifyText(VerificationScheme.GitHub, "", GitHubHeaders("sha256=" + emptyKeyMac), GitHubBody);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    // ---- Stripe ----

    [Fact]
    public void Stripe_WithComputedVector_IsValid()
    {
        SignatureCheck result = VerifyStripe(StripeHeaders($"t={StripeTimestamp},v1={StripeHex}"), StripeBody, StripeNow);

        Assert.Equal(SignatureCheck.Valid, result);
    }

    [Fact]
    public void Stripe_WithFlippedBodyByte_ReturnsInvalid()
    {
        byte[] body = Encoding.UTF8.GetBytes(StripeBody);
        HeaderDictionary headers = StripeHeaders($"t={StripeTimestamp},v1={StripeHex}");
        Assert.Equal(SignatureCheck.Valid, Verify(VerificationScheme.Stripe, StripeSecret, headers, body, StripeNow));

        body[5] ^= 0x01;

        Assert.Equal(SignatureCheck.Invalid, Verify(VerificationScheme.Stripe, StripeSecret, headers, body, StripeNow));
    }

    [Fact]
    public void Stripe_WithWrongSecret_ReturnsInvalid()
    {
        SignatureCheck result = Verify(
            VerificationScheme.Stripe, "whsec_other_secret", StripeHeaders($"t={StripeTimestamp},v1={StripeHex}"),
            Encoding.UTF8.GetBytes(StripeBody), StripeNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Fact]
    public void Stripe_WithChangedTimestamp_ReturnsInvalid()
    {
        // t is part of the signed payload, so moving it forward to dodge the tolerance breaks the signature.
        SignatureCheck result = VerifyStripe(StripeHeaders($"t={StripeTimestamp + 1},v1={StripeHex}"), StripeBody, StripeNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    public void Stripe_WithHeaderAbsentOrEmpty_ReturnsMissing(string? header)
    {
        HeaderDictionary headers = header is null ? new HeaderDictionary() : StripeHeaders(header);

        SignatureCheck result = VerifyStripe(headers, StripeBody, StripeNow);

        Assert.Equal(SignatureCheck.Missing, result);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("t=1614265330")]
    [InlineData("v1=" + StripeHex)]
    [InlineData("t=,v1=" + StripeHex)]
    [InlineData("t=abc,v1=" + StripeHex)]
    [InlineData("t=1614265330,t=1614265330,v1=" + StripeHex)]
    [InlineData("t=1614265330,v1=not-hex")]
    [InlineData("t=1614265330,v1=")]
    [InlineData("t=1614265330,v1=" + StripeHex + "00")]
    [InlineData("t=1614265330,=,,v1")]
    public void Stripe_WithGarbageHeader_ReturnsInvalid(string header)
    {
        SignatureCheck result = VerifyStripe(StripeHeaders(header), StripeBody, StripeNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Fact]
    public void Stripe_WithTimestampOutsideToleranceInPast_ReturnsOutsideTolerance()
    {
        DateTimeOffset now = StripeNow + Tolerance + TimeSpan.FromSeconds(1);

        SignatureCheck result = VerifyStripe(StripeHeaders($"t={StripeTimestamp},v1={StripeHex}"), StripeBody, now);

        Assert.Equal(SignatureCheck.OutsideTolerance, result);
    }

    [Fact]
    public void Stripe_WithTimestampOutsideToleranceInFuture_ReturnsOutsideTolerance()
    {
        DateTimeOffset now = StripeNow - Tolerance - TimeSpan.FromSeconds(1);

        SignatureCheck result = VerifyStripe(StripeHeaders($"t={StripeTimestamp},v1={StripeHex}"), StripeBody, now);

        Assert.Equal(SignatureCheck.OutsideTolerance, result);
    }

    [Fact]
    public void Stripe_WithTimestampJustInsideTolerance_IsValid()
    {
        DateTimeOffset now = StripeNow + Tolerance;

        SignatureCheck result = VerifyStripe(StripeHeaders($"t={StripeTimestamp},v1={StripeHex}"), StripeBody, now);

        Assert.Equal(SignatureCheck.Valid, result);
    }

    [Fact]
    public void Stripe_WithSeveralV1SignaturesOneMatching_IsValid()
    {
        string other = new('a', 64);
        string header = $"t={StripeTimestamp},v1={other},v1={StripeHex},v0={other}";

        SignatureCheck result = VerifyStripe(StripeHeaders(header), StripeBody, StripeNow);

        Assert.Equal(SignatureCheck.Valid, result);
    }

    [Fact]
    public void Stripe_WithMatchingSignatureOnlyUnderV0_ReturnsInvalid()
    {
        SignatureCheck result = VerifyStripe(StripeHeaders($"t={StripeTimestamp},v0={StripeHex}"), StripeBody, StripeNow);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    // ---- Shopify ----

    [Fact]
    public void Shopify_WithComputedVector_IsValid()
    {
        SignatureCheck result = VerifyText(VerificationScheme.Shopify, ShopifySecret, ShopifyHeaders(ShopifySignature), ShopifyBody);

        Assert.Equal(SignatureCheck.Valid, result);
    }

    [Fact]
    public void Shopify_WithFlippedBodyByte_ReturnsInvalid()
    {
        byte[] body = Encoding.UTF8.GetBytes(ShopifyBody);
        Assert.Equal(SignatureCheck.Valid, Verify(VerificationScheme.Shopify, ShopifySecret, ShopifyHeaders(ShopifySignature), body));

        body[^1] ^= 0x01;

        Assert.Equal(SignatureCheck.Invalid, Verify(VerificationScheme.Shopify, ShopifySecret, ShopifyHeaders(ShopifySignature), body));
    }

    [Fact]
    public void Shopify_WithWrongSecret_ReturnsInvalid()
    {
        SignatureCheck result = VerifyText(VerificationScheme.Shopify, "shpss_other_secret", ShopifyHeaders(ShopifySignature), ShopifyBody);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Fact]
    public void Shopify_WithHeaderAbsent_ReturnsMissing()
    {
        SignatureCheck result = VerifyText(VerificationScheme.Shopify, ShopifySecret, new HeaderDictionary(), ShopifyBody);

        Assert.Equal(SignatureCheck.Missing, result);
    }

    [Theory]
    [InlineData("garbage!")]
    [InlineData("DyCZHwhBMborrvH9V041dO/poDNS0e8cUWwh3epcPk")]
    [InlineData("DyCZHwhBMborrvH9V041dO/poDNS0e8cUWwh3epcPkcAAAA=")]
    [InlineData("0f20991f084131ba2baef1fd574e3574efe9a03352d1ef1c516c21ddea5c3e47")]
    public void Shopify_WithGarbageHeader_ReturnsInvalid(string header)
    {
        SignatureCheck result = VerifyText(VerificationScheme.Shopify, ShopifySecret, ShopifyHeaders(header), ShopifyBody);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    // ---- hmac-sha256 (ClusterQueue's own) ----

    [Theory]
    [InlineData(GitHubHex)]
    [InlineData("757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17")]
    [InlineData(GitHubSignature)]
    [InlineData(GitHubBase64)]
    public void HmacSha256_WithHexPrefixedHexOrBase64_IsValid(string header)
    {
        SignatureCheck result = VerifyText(VerificationScheme.HmacSha256, GitHubSecret, PlainHeaders(header), GitHubBody);

        Assert.Equal(SignatureCheck.Valid, result);
    }

    [Fact]
    public void HmacSha256_WithFlippedBodyByte_ReturnsInvalid()
    {
        byte[] body = Encoding.UTF8.GetBytes(GitHubBody);
        Assert.Equal(SignatureCheck.Valid, Verify(VerificationScheme.HmacSha256, GitHubSecret, PlainHeaders(GitHubBase64), body));

        body[7] ^= 0x01;

        Assert.Equal(SignatureCheck.Invalid, Verify(VerificationScheme.HmacSha256, GitHubSecret, PlainHeaders(GitHubBase64), body));
    }

    [Theory]
    [InlineData(GitHubHex)]
    [InlineData(GitHubBase64)]
    public void HmacSha256_WithWrongSecret_ReturnsInvalid(string header)
    {
        SignatureCheck result = VerifyText(VerificationScheme.HmacSha256, "another secret", PlainHeaders(header), GitHubBody);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    [Fact]
    public void HmacSha256_WithHeaderAbsent_ReturnsMissing()
    {
        HeaderDictionary headers = new() { ["X-Hub-Signature-256"] = GitHubSignature };

        SignatureCheck result = VerifyText(VerificationScheme.HmacSha256, GitHubSecret, headers, GitHubBody);

        Assert.Equal(SignatureCheck.Missing, result);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("sha256=")]
    [InlineData("sha1=" + GitHubHex)]
    [InlineData("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g")]
    [InlineData("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e")]
    [InlineData("dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEPhc")]
    public void HmacSha256_WithGarbageHeader_ReturnsInvalid(string header)
    {
        SignatureCheck result = VerifyText(VerificationScheme.HmacSha256, GitHubSecret, PlainHeaders(header), GitHubBody);

        Assert.Equal(SignatureCheck.Invalid, result);
    }

    // ---- Arguments ----

    [Fact]
    public void Verify_WithNegativeTolerance_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _verifier.Verify(
            VerificationScheme.GitHub, GitHubSecret, GitHubHeaders(GitHubSignature),
            Encoding.UTF8.GetBytes(GitHubBody), StandardNow, TimeSpan.FromSeconds(-1)));
    }

    [Fact]
    public void Verify_WithUndefinedScheme_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _verifier.Verify(
            (VerificationScheme)99, GitHubSecret, GitHubHeaders(GitHubSignature),
            Encoding.UTF8.GetBytes(GitHubBody), StandardNow, Tolerance));
    }

    // ---- Helpers ----

    private SignatureCheck Verify(VerificationScheme scheme, string secret, IHeaderDictionary headers, byte[] body, DateTimeOffset? now = null) =>
        _verifier.Verify(scheme, secret, headers, body, now ?? StandardNow, Tolerance);

    private SignatureCheck VerifyText(VerificationScheme scheme, string secret, IHeaderDictionary headers, string body) =>
        Verify(scheme, secret, headers, Encoding.UTF8.GetBytes(body));

    private SignatureCheck VerifyStandard(string secret, IHeaderDictionary headers, string body, DateTimeOffset now) =>
        Verify(VerificationScheme.StandardWebhooks, secret, headers, Encoding.UTF8.GetBytes(body), now);

    private SignatureCheck VerifyStripe(IHeaderDictionary headers, string body, DateTimeOffset now) =>
        Verify(VerificationScheme.Stripe, StripeSecret, headers, Encoding.UTF8.GetBytes(body), now);

    private static HeaderDictionary StandardHeaders(
        string id = StandardId, string? timestamp = null, string signature = StandardSignature) => new()
    {
        ["webhook-id"] = id,
        ["webhook-timestamp"] = timestamp ?? StandardTimestamp.ToString(),
        ["webhook-signature"] = signature,
    };

    private static HeaderDictionary SvixHeaders() => new()
    {
        ["svix-id"] = StandardId,
        ["svix-timestamp"] = StandardTimestamp.ToString(),
        ["svix-signature"] = StandardSignature,
    };

    private static HeaderDictionary GitHubHeaders(string signature) => new() { ["X-Hub-Signature-256"] = signature };

    private static HeaderDictionary StripeHeaders(string signature) => new() { ["Stripe-Signature"] = signature };

    private static HeaderDictionary ShopifyHeaders(string signature) => new() { ["X-Shopify-Hmac-Sha256"] = signature };

    private static HeaderDictionary PlainHeaders(string signature) => new() { ["X-Signature"] = signature };

    private static string SignStandard(byte[] key, string id, long timestamp, string body) =>
        "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}")));
}

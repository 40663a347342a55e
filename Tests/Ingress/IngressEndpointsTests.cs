using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterQueue.Tests.Ingress;

public sealed class IngressEndpointsTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    // Secrets in the form each sender issues them; the standard-webhooks key is the base64 after the prefix.
    private static readonly byte[] StandardWebhooksKey = Encoding.UTF8.GetBytes("a-32-byte-standard-webhooks-key!");
    private static readonly Dictionary<string, string> Secrets = new(StringComparer.Ordinal)
    {
        ["standard-webhooks"] = "whsec_" + Convert.ToBase64String(StandardWebhooksKey),
        ["github"] = "github-webhook-secret",
        ["stripe"] = "whsec_stripe-endpoint-secret",
        ["shopify"] = "shopify-app-secret",
        ["hmac-sha256"] = "our-own-shared-secret",
    };

    // The header each scheme carries its signature in; the other headers a scheme needs stay when it is removed.
    private static readonly Dictionary<string, string> SignatureHeaders = new(StringComparer.Ordinal)
    {
        ["standard-webhooks"] = "webhook-signature",
        ["github"] = "X-Hub-Signature-256",
        ["stripe"] = "Stripe-Signature",
        ["shopify"] = "X-Shopify-Hmac-Sha256",
        ["hmac-sha256"] = "X-Signature",
    };

    public static TheoryData<string> Schemes => new(Secrets.Keys);

    [Fact]
    public async Task Ingest_ToUnknownGroup_Returns404Problem()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders"));

        using var response = await node.IngestAsync("invoices", """{"a":1}""");

        var problem = await Problems.ReadAsync(response, HttpStatusCode.NotFound);
        Assert.Contains("invoices", problem.GetProperty("detail").GetString());
        Assert.Equal(0, (await node.StatsAsync("orders")).Ingested);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Ingest_WithBodyOverMaxPayloadBytes_Returns413AndStoresNothing(bool chunked)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("small", GroupDefinitions.Forwarding(downstream, "/small") with { MaxPayloadBytes = 1000 });

        // One byte over, and several of the reader's 16 KiB chunks over, so the limit is checked across reads too.
        foreach (var size in new[] { 1001, 100_000 })
        {
            using var response = await PostBytesAsync(node.Client, "small", Bytes(size), chunked);

            await Problems.ReadAsync(response, HttpStatusCode.RequestEntityTooLarge);
        }

        var stats = await node.StatsAsync("small");
        Assert.Equal(0, stats.Ingested);
        Assert.Equal(0, stats.Queued);
        Assert.Empty(downstream.Calls);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Ingest_WithBodyExactlyAtMaxPayloadBytes_Returns202AndDeliversIt(bool chunked)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("small", GroupDefinitions.Forwarding(downstream, "/small") with { MaxPayloadBytes = 1000 });
        var body = Bytes(1000);

        using var response = await PostBytesAsync(node.Client, "small", body, chunked);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        await downstream.WaitUntilAsync(d => d.CallsTo("/small").Count == 1, Wait, "the message at the limit is delivered");
        Assert.Equal(body, downstream.CallsTo("/small")[0].Body);
    }

    [Fact]
    public async Task Ingest_WithBodyShorterThanItsContentLength_Returns400AndStoresNothing()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("hooks", GroupDefinitions.Forwarding(downstream, "/hooks"));

        // A sender that died mid-upload: HttpClient refuses to send this, so it goes straight into the server.
        var context = await ((TestServer)node.Services.GetRequiredService<IServer>()).SendAsync(c =>
        {
            c.Request.Method = "POST";
            c.Request.Path = "/hooks/hooks";
            c.Request.ContentType = "application/json";
            c.Request.ContentLength = 100;
            c.Request.Body = new MemoryStream(Encoding.UTF8.GetBytes("""{"cut":"of"""));
        });

        Assert.Equal(StatusCodes.Status400BadRequest, context.Response.StatusCode);
        Assert.StartsWith("application/problem+json", context.Response.ContentType);
        await AssertNothingStoredAsync(node, "hooks");
    }

    [Theory]
    [InlineData(false, 1001)]
    [InlineData(true, 1001)]
    [InlineData(false, 5_000_000)]
    [InlineData(true, 5_000_000)]
    public async Task Ingest_OverRealHttp_WithBodyOverMaxPayloadBytes_Returns413AndStoresNothing(bool chunked, int size)
    {
        await using var node = new KestrelNode();
        await node.DefineGroupAsync("small", Unreachable(1000));

        using var response = await PostBytesAsync(node.Client, "small", Bytes(size), chunked);

        await Problems.ReadAsync(response, HttpStatusCode.RequestEntityTooLarge);
        var stats = (await node.Client.GetFromJsonAsync<GroupStats>("/v1/groups/small/stats"))!;
        Assert.Equal(0, stats.Ingested);
        Assert.Equal(0, stats.Queued);
    }

    [Theory]
    [InlineData(999, 999)]
    [InlineData(300, 1)]
    [InlineData(1000, 1)]
    [InlineData(1000, 7)]
    public async Task Ingest_OverRealHttp_WithChunkedBodyWithinMaxPayloadBytes_Returns202AndDeliversItsBytes(int size, int chunkSize)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = new KestrelNode();
        await node.DefineGroupAsync("small", GroupDefinitions.Forwarding(downstream, "/small") with { MaxPayloadBytes = 1000 });
        var body = Bytes(size);

        // Written by hand: the framing (a size line and a CRLF around every chunk) is what must not count as body.
        var response = await PostChunkedAsync(node.BaseAddress, "/hooks/small", body, chunkSize);

        Assert.True(response.Status == StatusCodes.Status202Accepted, $"{size} bytes in {chunkSize}-byte chunks: {response.Status} {response.Text}");
        await downstream.WaitUntilAsync(d => d.CallsTo("/small").Count == 1, Wait, "the chunked message is delivered");
        Assert.Equal(body, downstream.CallsTo("/small")[0].Body);
    }

    [Theory]
    [InlineData(1001, 1)]
    [InlineData(1001, 1001)]
    public async Task Ingest_OverRealHttp_WithChunkedBodyOneByteOverMaxPayloadBytes_Returns413AndStoresNothing(int size, int chunkSize)
    {
        await using var node = new KestrelNode();
        await node.DefineGroupAsync("small", Unreachable(1000));

        var response = await PostChunkedAsync(node.BaseAddress, "/hooks/small", Bytes(size), chunkSize);

        Assert.True(response.Status == StatusCodes.Status413PayloadTooLarge, $"{response.Status} {response.Text}");
        Assert.StartsWith("application/problem+json", response.Headers["Content-Type"]);
        var stats = await node.StatsAsync("small");
        Assert.Equal((0, 0), (stats.Ingested, stats.Queued));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Ingest_OverRealHttp_WithBodyAboveKestrelsDefaultLimitButWithinTheGroups_Returns202(bool chunked)
    {
        await using var node = new KestrelNode();
        const int GroupLimit = 32 * 1024 * 1024;
        await node.DefineGroupAsync("large", Unreachable(GroupLimit));

        // Kestrel refuses bodies over 30,000,000 bytes unless the endpoint lifts its limit to the group's.
        using var response = await PostBytesAsync(node.Client, "large", Bytes(31 * 1024 * 1024), chunked);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal(1, (await node.Client.GetFromJsonAsync<GroupStats>("/v1/groups/large/stats"))!.Ingested);
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public async Task Ingest_WithCorrectSignature_Returns202AndDelivers(string scheme)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await DefineSignedGroupAsync(node, downstream, scheme);
        var body = $$"""{"id":"evt_{{Guid.NewGuid():N}}","scheme":"{{scheme}}"}""";

        using var response = await PostAsync(node, "signed", body, Sign(scheme, Secrets[scheme], body, DateTimeOffset.UtcNow));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var accepted = (await response.Content.ReadFromJsonAsync<IngestAccepted>())!;
        Assert.False(accepted.Duplicate);
        await downstream.WaitUntilAsync(d => d.CallsTo("/signed").Count == 1, Wait, "the signed message is delivered");
        var call = downstream.CallsTo("/signed")[0];
        Assert.Equal(accepted.MessageId, call.MessageId);
        Assert.Equal(body, Encoding.UTF8.GetString(call.Body));
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public async Task Ingest_WithSignatureFromAnotherSecret_Returns401AndStoresNothing(string scheme)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await DefineSignedGroupAsync(node, downstream, scheme);
        var body = """{"id":"evt_1"}""";
        var otherSecret = scheme == "standard-webhooks" ? "whsec_" + Convert.ToBase64String(Encoding.UTF8.GetBytes("another-key")) : "another-secret";

        using var response = await PostAsync(node, "signed", body, Sign(scheme, otherSecret, body, DateTimeOffset.UtcNow));

        await Problems.ReadAsync(response, HttpStatusCode.Unauthorized);
        await AssertNothingStoredAsync(node, "signed");
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public async Task Ingest_WithBodyChangedAfterSigning_Returns401AndStoresNothing(string scheme)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await DefineSignedGroupAsync(node, downstream, scheme);
        var headers = Sign(scheme, Secrets[scheme], """{"id":"evt_1","amount":100}""", DateTimeOffset.UtcNow);

        using var response = await PostAsync(node, "signed", """{"id":"evt_1","amount":999}""", headers);

        await Problems.ReadAsync(response, HttpStatusCode.Unauthorized);
        await AssertNothingStoredAsync(node, "signed");
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public async Task Ingest_WithoutSignature_Returns401AndStoresNothing(string scheme)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await DefineSignedGroupAsync(node, downstream, scheme);
        var body = """{"id":"evt_1"}""";
        var headers = Sign(scheme, Secrets[scheme], body, DateTimeOffset.UtcNow);
        headers.Remove(SignatureHeaders[scheme]);

        using var withoutSignature = await PostAsync(node, "signed", body, headers);
        using var bare = await PostAsync(node, "signed", body, new Dictionary<string, string>());

        await Problems.ReadAsync(withoutSignature, HttpStatusCode.Unauthorized);
        await Problems.ReadAsync(bare, HttpStatusCode.Unauthorized);
        await AssertNothingStoredAsync(node, "signed");
    }

    [Theory]
    [InlineData("standard-webhooks", -600)]
    [InlineData("stripe", -600)]
    [InlineData("standard-webhooks", 600)]
    [InlineData("stripe", 600)]
    public async Task Ingest_WithTimestampOutsideTolerance_Returns401AndStoresNothing(string scheme, int offsetSeconds)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await DefineSignedGroupAsync(node, downstream, scheme);
        var body = """{"id":"evt_1"}""";

        using var response = await PostAsync(node, "signed", body, Sign(scheme, Secrets[scheme], body, DateTimeOffset.UtcNow.AddSeconds(offsetSeconds)));

        var problem = await Problems.ReadAsync(response, HttpStatusCode.Unauthorized);
        Assert.Contains("tolerance", problem.GetProperty("detail").GetString());
        await AssertNothingStoredAsync(node, "signed");
    }

    [Theory]
    [InlineData("webhook-id")]
    [InlineData("svix-id")]
    [InlineData("X-GitHub-Delivery")]
    [InlineData("X-Shopify-Webhook-Id")]
    [InlineData("Idempotency-Key")]
    public async Task Ingest_SameDeliveryIdTwice_AcknowledgesBothButEnqueuesOnce(string header)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();

        // One call at a time in queue order: a second copy enqueued before the sentinel would be delivered before it.
        await node.DefineGroupAsync("hooks", GroupDefinitions.Forwarding(downstream, "/hooks", concurrency: 1));
        var key = new Dictionary<string, string> { [header] = "delivery-42" };

        using var first = await node.IngestAsync("hooks", """{"n":1}""", headers: key);
        using var second = await node.IngestAsync("hooks", """{"n":1}""", headers: key);

        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, second.StatusCode);
        var one = (await first.Content.ReadFromJsonAsync<IngestAccepted>())!;
        var two = (await second.Content.ReadFromJsonAsync<IngestAccepted>())!;
        Assert.False(one.Duplicate);
        Assert.True(two.Duplicate);
        Assert.Equal(one.MessageId, two.MessageId);
        Assert.Equal($"/v1/messages/{one.MessageId}", second.Headers.Location?.OriginalString);
        Assert.Equal(1, (await node.StatsAsync("hooks")).Ingested);

        var sentinel = await node.IngestOkAsync("hooks", """{"sentinel":true}""");
        await downstream.WaitUntilAsync(d => d.CallsTo("/hooks").Any(c => c.MessageId == sentinel), Wait, "the sentinel is delivered");
        Assert.Equal([one.MessageId, sentinel], downstream.CallsTo("/hooks").Select(c => c.MessageId));
    }

    [Fact]
    public async Task Ingest_SameDeliveryIdConcurrently_StoresExactlyOneMessage()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("hooks", GroupDefinitions.Forwarding(downstream, "/hooks"));
        var key = new Dictionary<string, string> { ["Idempotency-Key"] = "same" };

        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => node.IngestAsync("hooks", """{"n":1}""", headers: key)));

        var accepted = new List<IngestAccepted>();
        foreach (var response in responses)
        {
            using (response)
            {
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
                accepted.Add((await response.Content.ReadFromJsonAsync<IngestAccepted>())!);
            }
        }

        Assert.Single(accepted.Select(a => a.MessageId).Distinct());
        Assert.Single(accepted, a => !a.Duplicate);
        Assert.Equal(1, (await node.StatsAsync("hooks")).Ingested);
        await downstream.WaitUntilAsync(d => d.CallsTo("/hooks").Count == 1, Wait, "the one message is delivered");
    }

    [Fact]
    public async Task Ingest_TwoDifferentDeliveryIds_StoresTwoMessages()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("hooks", GroupDefinitions.Forwarding(downstream, "/hooks"));

        var one = await node.IngestOkAsync("hooks", """{"n":1}""", new Dictionary<string, string> { ["Idempotency-Key"] = "a" });
        var two = await node.IngestOkAsync("hooks", """{"n":1}""", new Dictionary<string, string> { ["Idempotency-Key"] = "b" });

        Assert.NotEqual(one, two);
        Assert.Equal(2, (await node.StatsAsync("hooks")).Ingested);
        await downstream.WaitUntilAsync(d => d.CallsTo("/hooks").Count == 2, Wait, "both messages are delivered");
        Assert.Equal(new[] { one, two }.Order(), downstream.CallsTo("/hooks").Select(c => c.MessageId!).Order());
    }

    [Fact]
    public async Task Ingest_SameDeliveryIdInTwoGroups_StoresAMessageInEach()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders"));
        await node.DefineGroupAsync("invoices", GroupDefinitions.Forwarding(downstream, "/invoices"));
        var key = new Dictionary<string, string> { ["Idempotency-Key"] = "shared" };

        using var first = await node.IngestAsync("orders", """{"n":1}""", headers: key);
        using var second = await node.IngestAsync("invoices", """{"n":1}""", headers: key);

        var one = (await first.Content.ReadFromJsonAsync<IngestAccepted>())!;
        var two = (await second.Content.ReadFromJsonAsync<IngestAccepted>())!;
        Assert.NotEqual(one.MessageId, two.MessageId);
        Assert.False(one.Duplicate);
        Assert.False(two.Duplicate);
        await downstream.WaitUntilAsync(d => d.CallsTo("/orders").Count == 1 && d.CallsTo("/invoices").Count == 1, Wait, "one delivery in each group");
        Assert.Equal(1, (await node.StatsAsync("orders")).Ingested);
        Assert.Equal(1, (await node.StatsAsync("invoices")).Ingested);
    }

    [Fact]
    public async Task Ingest_StripeEventIdTwice_IsDeduplicatedByTheBodyId()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await DefineSignedGroupAsync(node, downstream, "stripe", concurrency: 1);
        var body = """{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"invoice.paid"}""";
        var now = DateTimeOffset.UtcNow;

        // Stripe re-signs a retried event with a new timestamp; only the event id stays the same.
        using var first = await PostAsync(node, "signed", body, Sign("stripe", Secrets["stripe"], body, now.AddSeconds(-30)));
        using var retry = await PostAsync(node, "signed", body, Sign("stripe", Secrets["stripe"], body, now));
        var otherBody = """{"id":"evt_other","object":"event","type":"invoice.paid"}""";
        using var other = await PostAsync(node, "signed", otherBody, Sign("stripe", Secrets["stripe"], otherBody, now));

        var one = (await first.Content.ReadFromJsonAsync<IngestAccepted>())!;
        var two = (await retry.Content.ReadFromJsonAsync<IngestAccepted>())!;
        var three = (await other.Content.ReadFromJsonAsync<IngestAccepted>())!;
        Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
        Assert.Equal(one.MessageId, two.MessageId);
        Assert.True(two.Duplicate);
        Assert.NotEqual(one.MessageId, three.MessageId);
        Assert.False(three.Duplicate);
        await downstream.WaitUntilAsync(d => d.CallsTo("/signed").Count == 2, Wait, "two distinct events are delivered");
        Assert.Equal(2, (await node.StatsAsync("signed")).Ingested);
        Assert.Equal(new[] { one.MessageId, three.MessageId }, downstream.CallsTo("/signed").Select(c => c.MessageId));
    }

    [Theory]
    [InlineData("Idempotency-Key")]
    [InlineData("X-GitHub-Delivery")]
    [InlineData("webhook-id")]
    public async Task Ingest_WithDeliveryIdOver256Characters_Returns400NamingTheHeaderAndStoresNothing(string header)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("hooks", GroupDefinitions.Forwarding(downstream, "/hooks"));

        using var tooLong = await node.IngestAsync("hooks", "{}", headers: new Dictionary<string, string> { [header] = new string('k', 257) });

        var problem = await Problems.ReadAsync(tooLong, HttpStatusCode.BadRequest);
        Assert.Equal([header], problem.GetProperty("errors").EnumerateObject().Select(e => e.Name));
        await AssertNothingStoredAsync(node, "hooks");

        // 256 characters is still a key, and keys differing only past 256 would otherwise collide.
        using var longest = await node.IngestAsync("hooks", "{}", headers: new Dictionary<string, string> { [header] = new string('k', 256) });
        Assert.Equal(HttpStatusCode.Accepted, longest.StatusCode);
    }

    [Fact]
    public async Task Ingest_Accepted_LocationAnswersTheMessageStatusAsItMoves()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();

        // One token refilled every 100 s: the first message is handed over, the second has to wait in the queue.
        await node.DefineGroupAsync("slow", GroupDefinitions.Forwarding(downstream, "/slow", rate: 0.01, burst: 1, concurrency: 1));
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromSeconds(1.5));

        using var first = await node.IngestAsync("slow", """{"n":1}""");
        using var second = await node.IngestAsync("slow", """{"n":2}""");

        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        var firstId = (await first.Content.ReadFromJsonAsync<IngestAccepted>())!.MessageId;
        var secondId = (await second.Content.ReadFromJsonAsync<IngestAccepted>())!.MessageId;
        Assert.Equal($"/v1/messages/{firstId}", first.Headers.Location?.OriginalString);
        Assert.Equal($"/v1/messages/{secondId}", second.Headers.Location?.OriginalString);

        await downstream.WaitUntilAsync(d => d.CallsTo("/slow").Count == 1, Wait, "the first message reaches the handler");
        var processing = (await node.Client.GetFromJsonAsync<MessageStatus>(first.Headers.Location))!;
        var queued = (await node.Client.GetFromJsonAsync<MessageStatus>(second.Headers.Location))!;
        Assert.Equal(("processing", firstId, "slow", 1), (processing.State, processing.MessageId, processing.GroupId, processing.Attempts));
        Assert.Equal(("queued", secondId, 0), (queued.State, queued.MessageId, queued.Attempts));

        var delivered = await PollStatusAsync(node, first.Headers.Location!, "delivered");
        Assert.Equal(1, delivered.Attempts);
        Assert.NotNull(delivered.CompletedAt);
        Assert.Equal("queued", (await node.Client.GetFromJsonAsync<MessageStatus>(second.Headers.Location))!.State);
    }

    [Theory]
    [InlineData("application/octet-stream")]
    [InlineData("application/vnd.example.event+json; charset=utf-8")]
    [InlineData("text/plain; charset=iso-8859-1")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("application/json;charset=UTF-8")]
    [InlineData("multipart/form-data; boundary=\"simple boundary\"")]
    [InlineData("application/x-custom; version=1.0; flag")]
    [InlineData("text/plain; charset=\"unterminated")]
    [InlineData("weird")]
    public async Task Ingest_AnyBody_ArrivesAtTheTargetWithItsBytesAndContentTypeUnchanged(string contentType)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("raw", GroupDefinitions.Forwarding(downstream, "/raw"));

        // Not UTF-8: a NUL, a lone continuation byte, an overlong encoding, BOM-like bytes and Latin-1 letters.
        byte[] body = [0x00, 0x80, 0xC0, 0xAF, 0xFF, 0xFE, 0xE9, 0x7B, 0x0D, 0x0A, .. RandomNumberGenerator.GetBytes(2048)];

        // Straight into the server: HttpClient would re-format the header before the node ever saw it.
        var context = await ((TestServer)node.Services.GetRequiredService<IServer>()).SendAsync(c =>
        {
            c.Request.Method = "POST";
            c.Request.Path = "/hooks/raw";
            c.Request.Headers.ContentType = contentType;
            c.Request.ContentLength = body.Length;
            c.Request.Body = new MemoryStream(body);
        });

        Assert.Equal(StatusCodes.Status202Accepted, context.Response.StatusCode);
        await downstream.WaitUntilAsync(d => d.CallsTo("/raw").Count == 1, Wait, "the message is delivered");
        var call = downstream.CallsTo("/raw")[0];
        Assert.Equal(body, call.Body);
        Assert.Equal(contentType, call.ContentType);
    }

    [Fact]
    public async Task Ingest_WithoutContentType_ArrivesWithoutOne()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("raw", GroupDefinitions.Forwarding(downstream, "/raw"));
        var body = Bytes(64);

        using var response = await node.Client.PostAsync("/hooks/raw", new ByteArrayContent(body));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        await downstream.WaitUntilAsync(d => d.CallsTo("/raw").Count == 1, Wait, "the message is delivered");
        Assert.Equal(body, downstream.CallsTo("/raw")[0].Body);
        Assert.Null(downstream.CallsTo("/raw")[0].ContentType);
    }

    private static async Task DefineSignedGroupAsync(NodeHost node, Downstream downstream, string scheme, int concurrency = 100) =>
        await node.DefineGroupAsync("signed", GroupDefinitions.Forwarding(downstream, "/signed", concurrency: concurrency) with
        {
            Verification = new VerificationDefinition { Scheme = scheme, Secret = Secrets[scheme] },
        });

    /// <summary>The headers a sender of <paramref name="scheme"/> would put on <paramref name="body"/>, computed independently of the node.</summary>
    private static Dictionary<string, string> Sign(string scheme, string secret, string body, DateTimeOffset at)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var timestamp = at.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        switch (scheme)
        {
            case "standard-webhooks":
            {
                var id = "msg_" + Guid.NewGuid().ToString("N");
                var key = Convert.FromBase64String(secret["whsec_".Length..]);
                var mac = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}"));
                return new() { ["webhook-id"] = id, ["webhook-timestamp"] = timestamp, ["webhook-signature"] = "v1," + Convert.ToBase64String(mac) };
            }

            case "github":
                return new()
                {
                    ["X-GitHub-Delivery"] = Guid.NewGuid().ToString(),
                    ["X-Hub-Signature-256"] = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), bytes)),
                };

            case "stripe":
            {
                var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{timestamp}.{body}"));
                return new() { ["Stripe-Signature"] = $"t={timestamp},v1={Convert.ToHexStringLower(mac)}" };
            }

            case "shopify":
                return new()
                {
                    ["X-Shopify-Webhook-Id"] = Guid.NewGuid().ToString(),
                    ["X-Shopify-Hmac-Sha256"] = Convert.ToBase64String(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), bytes)),
                };

            case "hmac-sha256":
                return new() { ["X-Signature"] = Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), bytes)) };

            default:
                throw new ArgumentOutOfRangeException(nameof(scheme), scheme, "No signer for this scheme.");
        }
    }

    /// <summary>A group whose target refuses connections: for tests about what ingress stores, not delivery.</summary>
    private static GroupDefinition Unreachable(long maxPayloadBytes) => new()
    {
        RatePerSecond = 1,
        Burst = 1,
        MaxConcurrency = 1,
        Target = new TargetDefinition { Url = "http://127.0.0.1:9/unreachable" },
        MaxPayloadBytes = maxPayloadBytes,
    };

    private static Task<HttpResponseMessage> PostAsync(NodeHost node, string group, string body, Dictionary<string, string> headers) =>
        node.IngestAsync(group, body, headers: headers);

    private static Task<HttpResponseMessage> PostBytesAsync(HttpClient client, string group, byte[] body, bool chunked)
    {
        HttpContent content = chunked ? new UnknownLengthContent(body) : new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        if (chunked)
        {
            // The point of the chunked case: the node cannot know the size before it reads.
            Assert.Null(content.Headers.ContentLength);
        }

        return client.PostAsync($"/hooks/{group}", content);
    }

    private static async Task<RawResponse> PostChunkedAsync(Uri node, string path, byte[] body, int chunkSize)
    {
        await using var connection = await RawConnection.OpenAsync(node);
        await connection.SendAsync(RawConnection.PostHead(node, path, ["Content-Type: application/octet-stream", "Transfer-Encoding: chunked", "Connection: close"]));
        await connection.SendAsync(RawConnection.Chunked(body, chunkSize));
        return await connection.ReadResponseAsync(TimeSpan.FromSeconds(30));
    }

    private static async Task AssertNothingStoredAsync(NodeHost node, string group)
    {
        var stats = await node.StatsAsync(group);
        Assert.Equal(0, stats.Ingested);
        Assert.Equal(0, stats.Queued);
        Assert.Equal(0, stats.InFlight);
    }

    private static async Task<MessageStatus> PollStatusAsync(NodeHost node, Uri location, string state)
        => await Eventually.ReadAsync(async () => (await node.Client.GetFromJsonAsync<MessageStatus>(location))!, s => s.State == state, $"{location} to be '{state}'", Wait);

    private static byte[] Bytes(int count)
    {
        var bytes = new byte[count];
        for (var i = 0; i < count; i++)
        {
            bytes[i] = (byte)(i * 31 % 251);
        }

        return bytes;
    }

    /// <summary>A body sent in pieces from a stream that cannot tell its length, as a chunked upload is.</summary>
    private sealed class UnknownLengthContent(byte[] body) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            for (var offset = 0; offset < body.Length; offset += 4096)
            {
                await stream.WriteAsync(body.AsMemory(offset, Math.Min(4096, body.Length - offset)));
                await stream.FlushAsync();
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}

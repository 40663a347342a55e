using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Ingress;
using ClusterQueue.Node.Ingress.Verification;
using ClusterQueue.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace ClusterQueue.Tests.Ingress;

/// <summary>Which header names a delivery, and what a request whose delivery id is ambiguous gets.</summary>
public sealed class DeliveryIdTests
{
    [Theory]
    [InlineData("Idempotency-Key")]
    [InlineData("X-GitHub-Delivery")]
    [InlineData("svix-id")]
    [InlineData("webhook-id")]
    public void DeliveryIdHeaderWithTwoValues_IsRefusedNamingTheHeader(string header)
    {
        var headers = new HeaderDictionary { [header] = new StringValues(["a", "b"]) };

        var found = DeliveryId.Find(headers, scheme: null, body: []);

        Assert.Null(found.Id);
        Assert.Equal(header, found.Source);
        Assert.Contains(header, found.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void RepeatedIdempotencyKey_IsRefusedEvenBesideAnotherDeliveryId()
    {
        // Which copy the sender meant is not ours to guess, wherever the header stands in the order.
        var headers = new HeaderDictionary { ["X-GitHub-Delivery"] = "d-1", ["Idempotency-Key"] = new StringValues(["a", "b"]) };

        var found = DeliveryId.Find(headers, VerificationScheme.GitHub, body: []);

        Assert.Equal("Idempotency-Key", found.Source);
        Assert.NotNull(found.Error);
    }

    [Fact]
    public void StandardWebhooksSentWithSvixNames_IsDeduplicatedBySvixId()
    {
        var headers = new HeaderDictionary { ["svix-id"] = "msg_1", ["svix-timestamp"] = "1", ["svix-signature"] = "v1,x", ["Idempotency-Key"] = "other" };

        var found = DeliveryId.Find(headers, VerificationScheme.StandardWebhooks, body: []);

        Assert.Equal(("msg_1", "svix-id", (string?)null), (found.Id, found.Source, found.Error));
    }

    [Fact]
    public void StandardWebhooksSentWithWebhookNames_IsDeduplicatedByWebhookIdEvenBesideASvixId()
    {
        var headers = new HeaderDictionary
        {
            ["svix-id"] = "msg_stray",
            ["webhook-id"] = "msg_2",
            ["webhook-timestamp"] = "1",
            ["webhook-signature"] = "v1,x",
        };

        var found = DeliveryId.Find(headers, VerificationScheme.StandardWebhooks, body: []);

        Assert.Equal(("msg_2", "webhook-id"), (found.Id, found.Source));
    }

    [Fact]
    public async Task Ingest_WithIdempotencyKeySentTwice_Returns400NamingTheHeaderAndStoresNothing()
    {
        // A real socket: HttpClient would join the two values into one line, which is not what curl -H twice sends.
        using var directory = new TempDirectory();
        await using var node = await NodeProcess.StartAsync(directory.File("clusterqueue.db"));
        using (var put = await node.Client.PutAsJsonAsync("/v1/groups/hooks", new GroupDefinition
        {
            RatePerSecond = 1,
            Burst = 1,
            MaxConcurrency = 1,
            Target = new TargetDefinition { Url = "http://127.0.0.1:9/unreachable" },
        }))
        {
            put.EnsureSuccessStatusCode();
        }

        var (status, body) = await PostRawAsync(node.BaseAddress, "/hooks/hooks", "{}", ("Idempotency-Key", "a"), ("Idempotency-Key", "b"));

        Assert.True(status == 400, $"two Idempotency-Key headers answered {status}: {body}");
        var errors = JsonDocument.Parse(body).RootElement.GetProperty("errors");
        Assert.Equal(["Idempotency-Key"], errors.EnumerateObject().Select(e => e.Name));
        var stats = (await node.Client.GetFromJsonAsync<GroupStats>("/v1/groups/hooks/stats"))!;
        Assert.Equal(0, stats.Ingested);

        var (once, _) = await PostRawAsync(node.BaseAddress, "/hooks/hooks", "{}", ("Idempotency-Key", "a"));
        Assert.Equal(202, once);
    }

    /// <summary>Sends one HTTP/1.1 request with exactly the header lines given and returns the status and (de-chunked) body.</summary>
    private static async Task<(int Status, string Body)> PostRawAsync(Uri node, string path, string body, params (string Name, string Value)[] headers)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(node.Host, node.Port);
        await using var stream = client.GetStream();
        var request = new StringBuilder()
            .Append($"POST {path} HTTP/1.1\r\nHost: {node.Authority}\r\nContent-Type: application/json\r\n")
            .Append($"Content-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n");
        foreach (var (name, value) in headers)
        {
            request.Append($"{name}: {value}\r\n");
        }

        await stream.WriteAsync(Encoding.UTF8.GetBytes(request.Append("\r\n").Append(body).ToString()));
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var response = await reader.ReadToEndAsync();
        var split = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var head = response[..split];
        var content = response[(split + 4)..];
        if (head.Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase))
        {
            var joined = new StringBuilder();
            for (var at = 0; ;)
            {
                var lineEnd = content.IndexOf("\r\n", at, StringComparison.Ordinal);
                var size = Convert.ToInt32(content[at..lineEnd], 16);
                if (size == 0)
                {
                    break;
                }

                joined.Append(content, lineEnd + 2, size);
                at = lineEnd + 2 + size + 2;
            }

            content = joined.ToString();
        }

        return (int.Parse(head.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), content);
    }
}

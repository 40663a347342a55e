using System.ComponentModel;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Ingress;

/// <summary>
/// Deliveries signed by the senders' own libraries (npm: svix, standardwebhooks, @octokit/webhooks-methods, stripe,
/// @shopify/shopify-api; pinned in tools/package.json and run by tools/sign-webhooks.mjs), not by this project's HMAC
/// code: a header name or encoding the node reads differently from the real sender shows up here. Each is posted to the
/// real node: accepted, refused once its body is changed, and its retry (same delivery id, signed again) is
/// acknowledged as a duplicate of the first.
/// </summary>
public sealed class SenderLibraryTests
{
    private static readonly string[] Packages = ["svix", "standardwebhooks", "@octokit/webhooks-methods", "stripe", "@shopify/shopify-api"];

    [Theory]
    [InlineData("svix", "standard-webhooks")]
    [InlineData("standard-webhooks", "standard-webhooks")]
    [InlineData("github", "github")]
    [InlineData("stripe", "stripe")]
    [InlineData("shopify", "shopify")]
    public async Task Ingest_SignedBySendersOwnLibrary_IsAccepted_TamperedBodyRefused_RetryDeduplicated(string sender, string scheme)
    {
        await using var node = NodeHost.Start();
        var secret = SecretFor(sender);
        await node.DefineGroupAsync("signed", Held(scheme, secret));
        var eventId = $"evt_{Guid.NewGuid():N}";
        var body = $$$"""{"id":"{{{eventId}}}","type":"order.created","data":{"order":42,"note":"ünïcödé"}}""";

        // The second is the sender's retry: the same delivery id and body, signed again.
        var signed = await SignAsync([(sender, secret, body, eventId), (sender, secret, body, eventId)]);

        using var first = await PostAsync(node, body, signed[0]);
        using var tampered = await PostAsync(node, body.Replace("42", "43", StringComparison.Ordinal), signed[0]);
        using var retry = await PostAsync(node, body, signed[1]);

        Assert.True(first.StatusCode == HttpStatusCode.Accepted, $"{sender}: {(int)first.StatusCode} {await first.Content.ReadAsStringAsync()} with {Describe(signed[0])}");
        Assert.Equal(HttpStatusCode.Unauthorized, tampered.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
        var accepted = (await first.Content.ReadFromJsonAsync<IngestAccepted>())!;
        var again = (await retry.Content.ReadFromJsonAsync<IngestAccepted>())!;
        Assert.False(accepted.Duplicate);
        Assert.True(again.Duplicate, $"{sender}: the retry was stored again");
        Assert.Equal(accepted.MessageId, again.MessageId);
        Assert.Equal(1, (await node.StatsAsync("signed")).Ingested);
    }

    [Fact]
    public async Task Ingest_SvixHeadersWithTheIdUnderItsWebhookName_IsRefused()
    {
        await using var node = NodeHost.Start();
        var secret = SecretFor("svix");
        await node.DefineGroupAsync("signed", Held("standard-webhooks", secret));
        const string Body = """{"n":1}""";
        var signed = (await SignAsync([("svix", secret, Body, "msg_mixed")]))[0];

        // webhook-id with svix-timestamp and svix-signature: never a mix of the two sets.
        signed["webhook-id"] = signed["svix-id"];
        signed.Remove("svix-id");
        using var mixed = await PostAsync(node, Body, signed);

        Assert.Equal(HttpStatusCode.Unauthorized, mixed.StatusCode);
        Assert.Equal(0, (await node.StatsAsync("signed")).Ingested);
    }

    [Fact]
    public async Task Ingest_SvixRetriesOfTwoDeliveries_StoreEachOnce()
    {
        await using var node = NodeHost.Start();
        var secret = SecretFor("svix");
        await node.DefineGroupAsync("signed", Held("standard-webhooks", secret));
        const string Body = """{"same":"body"}""";

        // The same body under two Svix message ids is two deliveries; each one's retry is a duplicate of it.
        var signed = await SignAsync([("svix", secret, Body, "msg_a"), ("svix", secret, Body, "msg_b"), ("svix", secret, Body, "msg_a"), ("svix", secret, Body, "msg_b")]);
        var ids = new List<IngestAccepted>();
        foreach (var headers in signed)
        {
            using var response = await PostAsync(node, Body, headers);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            ids.Add((await response.Content.ReadFromJsonAsync<IngestAccepted>())!);
        }

        Assert.Equal([false, false, true, true], ids.Select(i => i.Duplicate));
        Assert.NotEqual(ids[0].MessageId, ids[1].MessageId);
        Assert.Equal(ids[0].MessageId, ids[2].MessageId);
        Assert.Equal(ids[1].MessageId, ids[3].MessageId);
        Assert.Equal(2, (await node.StatsAsync("signed")).Ingested);
    }

    private static string SecretFor(string sender) => sender switch
    {
        // Svix and Standard Webhooks secrets are base64 keys behind whsec_; the others are any string.
        "svix" or "standard-webhooks" => "whsec_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)),
        "stripe" => "whsec_" + Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant(),
        _ => Convert.ToHexString(RandomNumberGenerator.GetBytes(16)),
    };

    private static GroupDefinition Held(string scheme, string secret) => new()
    {
        RatePerSecond = 1,
        Burst = 1,
        MaxConcurrency = 1,
        Target = new TargetDefinition { Url = "http://127.0.0.1:9/unreachable" },
        Verification = new VerificationDefinition { Scheme = scheme, Secret = secret },
    };

    private static Task<HttpResponseMessage> PostAsync(NodeHost node, string body, Dictionary<string, string> headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/hooks/signed") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        foreach (var (name, value) in headers)
        {
            Assert.True(request.Headers.TryAddWithoutValidation(name, value), $"header {name} could not be added");
        }

        return node.Client.SendAsync(request);
    }

    private static string Describe(Dictionary<string, string> headers) => string.Join(", ", headers.Select(h => $"{h.Key}: {h.Value}"));

    /// <summary>Runs tools/sign-webhooks.mjs on the deliveries and returns each one's headers.</summary>
    private static async Task<List<Dictionary<string, string>>> SignAsync(IEnumerable<(string Scheme, string Secret, string Body, string Id)> deliveries)
    {
        var tools = ToolsDirectory();
        var missing = Packages.Where(package => !Directory.Exists(Path.Combine(tools, "node_modules", package))).ToList();
        Assert.True(missing.Count == 0, $"tools/node_modules lacks {string.Join(", ", missing)}: run ./test.sh, or 'npm ci --prefix tools' once.");

        var start = new ProcessStartInfo("node")
        {
            ArgumentList = { Path.Combine(tools, "sign-webhooks.mjs") },
            WorkingDirectory = tools,
            RedirectStandardInput = true,
            StandardInputEncoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (Win32Exception e)
        {
            Assert.Fail($"node is not installed ({e.Message}): run ./test.sh, which installs Node.js.");
            throw;
        }

        using (process)
        {
            var input = JsonSerializer.Serialize(deliveries.Select(d => new { scheme = d.Scheme, secret = d.Secret, body = d.Body, id = d.Id }));
            await process.StandardInput.WriteAsync(input);
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await process.WaitForExitAsync(deadline.Token);
            Assert.True(process.ExitCode == 0, $"sign-webhooks.mjs exited {process.ExitCode}: {await errors}");
            return JsonSerializer.Deserialize<List<Dictionary<string, string>>>(await output)!;
        }
    }

    private static string ToolsDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ClusterQueue.sln")))
            {
                return Path.Combine(dir.FullName, "tools");
            }
        }

        throw new InvalidOperationException($"No ClusterQueue.sln above {AppContext.BaseDirectory}.");
    }
}

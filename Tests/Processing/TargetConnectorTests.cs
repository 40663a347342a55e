using System.Net;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Processing;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Processing;

/// <summary>
/// ClusterQueue:Processing:RefuseLinkLocalTargets: with it on, the forwarder never connects to a link-local or cloud
/// metadata address, whether the target names it or a DNS name resolves to it; with it off (the default) it connects.
/// </summary>
public sealed class TargetConnectorTests
{
    private const string Setting = "ClusterQueue:Processing:RefuseLinkLocalTargets";

    [Theory]
    [InlineData("169.254.169.254")]
    [InlineData("169.254.0.0")]
    [InlineData("169.254.255.255")]
    [InlineData("fe80::1")]
    [InlineData("febf:ffff::1")]
    [InlineData("fd00:ec2::254")]
    [InlineData("::ffff:169.254.169.254")]
    [InlineData("::ffff:a9fe:1")]
    public void IsRefused_LinkLocalAndMetadataAddresses_AreRefused(string address) =>
        Assert.True(TargetConnector.IsRefused(IPAddress.Parse(address)));

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    [InlineData("10.0.0.1")]
    [InlineData("192.168.1.10")]
    [InlineData("169.253.255.255")]
    [InlineData("169.255.0.0")]
    [InlineData("93.184.216.34")]
    [InlineData("fec0::1")]
    [InlineData("fd00:ec2::253")]
    [InlineData("fd00::254")]
    [InlineData("2001:db8::1")]
    [InlineData("::ffff:127.0.0.1")]
    public void IsRefused_OtherAddresses_AreAllowed(string address) =>
        Assert.False(TargetConnector.IsRefused(IPAddress.Parse(address)));

    [Theory]
    [InlineData("169.254.169.254")]
    [InlineData("127.0.0.1,169.254.169.254")]
    public async Task Connect_ToANameThatResolvesToAMetadataAddress_IsRefusedWithoutConnecting(string resolved)
    {
        await using var downstream = await Downstream.StartAsync();
        var lookups = 0;
        var connector = new TargetConnector((_, _) =>
        {
            Interlocked.Increment(ref lookups);
            return Task.FromResult(resolved.Split(',').Select(IPAddress.Parse).ToArray());
        });
        using var client = new HttpClient(new SocketsHttpHandler { ConnectCallback = connector.ConnectAsync, UseProxy = false });

        var refused = await Assert.ThrowsAsync<HttpRequestException>(() =>
            client.PostAsync($"http://metadata.example:{downstream.BaseAddress.Port}/hook", new StringContent("{}")));

        Assert.Contains(Setting, refused.Message, StringComparison.Ordinal);
        Assert.Equal(1, lookups);
        Assert.Empty(downstream.Calls);
    }

    [Fact]
    public async Task Connect_ToANameThatResolvesToAnAllowedAddress_Connects()
    {
        await using var downstream = await Downstream.StartAsync();
        var connector = new TargetConnector((_, _) => Task.FromResult(new[] { IPAddress.Loopback }));
        using var client = new HttpClient(new SocketsHttpHandler { ConnectCallback = connector.ConnectAsync, UseProxy = false });

        using var response = await client.PostAsync($"http://allowed.example:{downstream.BaseAddress.Port}/hook", new StringContent("{}"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Single(downstream.CallsTo("/hook"));
    }

    [Theory]
    [InlineData("http://169.254.169.254/latest/meta-data/")]
    [InlineData("http://[fd00:ec2::254]/latest/meta-data/")]
    [InlineData("http://[::ffff:169.254.169.254]/")]
    public async Task Node_WithTheSettingOn_DeadLettersAMetadataTarget_WithAnErrorNamingTheSetting(string target)
    {
        await using var node = NodeHost.Start(new Dictionary<string, string?> { [Setting] = "true" });
        await node.DefineGroupAsync("metadata", OneAttempt(target));

        var id = await node.IngestOkAsync("metadata", "{}");

        // Refused before any connection: well inside the 10 s connect timeout and the 5 s handler timeout.
        var status = await Eventually.ReadAsync(() => StatusAsync(node, id), s => s.State == "dead", "the refused message to be dead-lettered");
        Assert.Contains(Setting, status.LastError, StringComparison.Ordinal);
        var attempt = Assert.Single(status.AttemptHistory!);
        Assert.Null(attempt.Status);
        Assert.Contains(Setting, attempt.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Node_WithTheSettingOn_StillDeliversToLoopbackTargets()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start(new Dictionary<string, string?> { [Setting] = "true" });
        await node.DefineGroupAsync("local", GroupDefinitions.Forwarding(downstream, "/local"));

        var id = await node.IngestOkAsync("local", "{}");

        await Eventually.ReadAsync(() => StatusAsync(node, id), s => s.State == "delivered", "the loopback delivery");
        Assert.Single(downstream.CallsTo("/local"));
    }

    [Fact]
    public async Task Node_ByDefault_TriesAMetadataTarget()
    {
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("metadata", OneAttempt("http://169.254.169.254/latest/meta-data/"));

        var id = await node.IngestOkAsync("metadata", "{}");

        // Whatever the network makes of it (no route, a timeout, an answer), the node tried: no policy stopped it.
        var status = await Eventually.ReadAsync(() => StatusAsync(node, id), s => s.State is "dead" or "delivered", "the attempt to settle", TimeSpan.FromSeconds(20));
        Assert.DoesNotContain(Setting, status.LastError ?? "", StringComparison.Ordinal);
        Assert.All(status.AttemptHistory ?? [], a => Assert.DoesNotContain(Setting, a.Error, StringComparison.Ordinal));
    }

    private static GroupDefinition OneAttempt(string target) => new()
    {
        RatePerSecond = 100,
        Burst = 10,
        MaxConcurrency = 1,
        Target = new TargetDefinition { Url = target },
        MaxAttempts = 1,
        HandlerTimeoutSeconds = 5,
    };

    private static async Task<MessageStatus> StatusAsync(NodeHost node, string id) =>
        (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!;
}

using System.Net;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Observability;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging;

namespace ClusterQueue.Tests.Cluster;

/// <summary>
/// The node's actor system as an Akka.Cluster member: alone it joins itself; given seed nodes, nodes form one cluster;
/// readiness waits for the member to be Up; the metrics count members and the log tells their comings and goings.
/// </summary>
public sealed class ClusterMembershipTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task EmbeddedNode_WithNoClusterConfiguration_IsReadyAsAOneMemberCluster()
    {
        using var directory = new TempDirectory();

        // Ready means /readyz answered 200, which needs the member Up; the start-up bound is generous for a loaded machine.
        await using var node = await NodeProcess.StartAsync(directory.File("clusterqueue.db"));

        var metrics = await node.Client.GetStringAsync("/metrics");
        Assert.Equal(1, Exposition.Value(metrics, "clusterqueue_cluster_members"));
        Assert.Equal(0, Exposition.Value(metrics, "clusterqueue_cluster_unreachable_members"));
        Assert.Equal(1, Exposition.Value(metrics, "clusterqueue_ready"));
    }

    [Fact]
    public async Task Node_WhoseSeedNodeNeverAnswers_IsNotReadyAndCountsNoMember()
    {
        // A seed that nobody listens on: the member stays Joining (never Up), so the node must not take traffic.
        await using var node = NodeHost.Start(new Dictionary<string, string?>
        {
            ["ClusterQueue:Cluster:SeedNodes:0"] = $"akka.tcp://clusterqueue@127.0.0.1:{LoopbackServer.FreePort()}",
        });

        // Recovery finishes within a second or two; readiness must still be false for want of the member being Up.
        await Eventually.TrueAsync(() => node.Get<NodeReadiness>().NotReadyReason == "The node's cluster member is not Up yet.", "recovered but not Up");
        using var ready = await node.Client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Contains("not Up yet", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var metrics = await node.Client.GetStringAsync("/metrics");
        Assert.Equal(0, Exposition.Value(metrics, "clusterqueue_cluster_members"));
        Assert.Equal(0, Exposition.Value(metrics, "clusterqueue_ready"));
    }

    [Fact]
    public async Task TwoNodes_GivenASeedNode_FormOneCluster_AndTheOneLeft_SeesTheOtherLeave()
    {
        await using var first = NodeHost.Start(new Dictionary<string, string?> { ["Logging:LogLevel:ClusterQueue.Node.Cluster"] = "Information" });
        var logs = CapturedLogs.Attach(first.Services);
        var membership = first.Get<ClusterMembership>();
        await Eventually.TrueAsync(() => first.Get<NodeReadiness>().IsReady, "the first node ready", Generous);
        var seed = membership.SelfAddress!.ToString();

        var second = NodeHost.Start(new Dictionary<string, string?> { ["ClusterQueue:Cluster:SeedNodes:0"] = seed });
        try
        {
            await Eventually.TrueAsync(() => second.Get<NodeReadiness>().IsReady, "the second node ready (Up)", Generous);
            await Eventually.TrueAsync(() => membership.UpMembers == 2 && second.Get<ClusterMembership>().UpMembers == 2, "both nodes seeing 2 members", Generous);
            Assert.Equal(2, Exposition.Value(await first.Client.GetStringAsync("/metrics"), "clusterqueue_cluster_members"));
            Assert.Equal(2, Exposition.Value(await second.Client.GetStringAsync("/metrics"), "clusterqueue_cluster_members"));
            Assert.Contains(logs.Entries, e => e.EventId.Id == 751 && e.Message.Contains(second.Get<ClusterMembership>().SelfAddress!.ToString(), StringComparison.Ordinal));
        }
        finally
        {
            // Stopping the host runs CoordinatedShutdown: the member leaves (not merely vanishes).
            await second.DisposeAsync();
        }

        await Eventually.TrueAsync(() => membership.UpMembers == 1, "the first node seeing 1 member", Generous);
        Assert.Equal(1, Exposition.Value(await first.Client.GetStringAsync("/metrics"), "clusterqueue_cluster_members"));
        Assert.Equal(0, Exposition.Value(await first.Client.GetStringAsync("/metrics"), "clusterqueue_cluster_unreachable_members"));
        await Eventually.TrueAsync(() => logs.Entries.Any(e => e.EventId.Id == 754), "the removal logged", Generous);
        Assert.Contains(logs.Entries, e => e.EventId.Id == 752);

        // It left gracefully: never unreachable, never downed.
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id is 753 or 755 && e.Level >= LogLevel.Warning);
        Assert.True(first.Get<NodeReadiness>().IsReady);
    }

    [Fact]
    public async Task MembersWithTls_FormOneCluster_AndAMemberWithAnUnpinnedCertificateIsRefused()
    {
        using var directory = new TempDirectory();
        var (clusterCertificate, thumbprint) = SelfSignedPfx(directory.File("cluster.pfx"), "cluster");
        var (strangerCertificate, strangerThumbprint) = SelfSignedPfx(directory.File("stranger.pfx"), "stranger");
        Dictionary<string, string?> Tls(string certificate, string trusted, string? seed = null)
        {
            var settings = new Dictionary<string, string?>
            {
                ["ClusterQueue:Cluster:Tls:CertificatePath"] = certificate,
                ["ClusterQueue:Cluster:Tls:CertificatePassword"] = "secret",
                ["ClusterQueue:Cluster:Tls:TrustedThumbprints:0"] = trusted,
            };
            if (seed is not null)
            {
                settings["ClusterQueue:Cluster:SeedNodes:0"] = seed;
            }

            return settings;
        }

        await using var first = NodeHost.Start(Tls(clusterCertificate, thumbprint));
        var logs = CapturedLogs.Attach(first.Services);
        await Eventually.TrueAsync(() => first.Get<NodeReadiness>().IsReady, "the first node ready", Generous);
        var seed = first.Get<ClusterMembership>().SelfAddress!.ToString();

        await using (var second = NodeHost.Start(Tls(clusterCertificate, thumbprint, seed)))
        {
            await Eventually.TrueAsync(() => second.Get<NodeReadiness>().IsReady, "the second node ready (Up)", Generous);
            await Eventually.TrueAsync(() => first.Get<ClusterMembership>().UpMembers == 2, "the first node seeing 2 members", Generous);
        }

        await Eventually.TrueAsync(() => first.Get<ClusterMembership>().UpMembers == 1, "the second node gone", Generous);

        // The stranger trusts only its own certificate, which the first node has not pinned: no connection, so no join.
        await using var stranger = NodeHost.Start(Tls(strangerCertificate, strangerThumbprint, seed));

        // Read now: a stranger that gives up may stop its host (and its services) before the checks below.
        var strangerReadiness = stranger.Get<NodeReadiness>();
        await Eventually.TrueAsync(
            () => logs.Entries.Any(e => e.Message.Contains($"thumbprint '{strangerThumbprint}' not in allowed list", StringComparison.Ordinal)),
            "the first node refusing the stranger's certificate",
            Generous);
        Assert.False(strangerReadiness.IsReady);
        Assert.Equal(1, first.Get<ClusterMembership>().UpMembers);
    }

    /// <summary>A self-signed certificate with its key, as a password-protected PKCS#12 file; its SHA-1 thumbprint.</summary>
    private static (string Path, string Thumbprint) SelfSignedPfx(string path, string name)
    {
        using var key = System.Security.Cryptography.RSA.Create(2048);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest(
            $"CN={name}", key, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllBytes(path, certificate.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pfx, "secret"));
        return (path, certificate.Thumbprint);
    }

    [Fact]
    public async Task Sigterm_OnALoneMember_EndsItsMembershipAfterTheDrainBegins_AndExitsPromptly()
    {
        using var directory = new TempDirectory();
        await using var node = await NodeProcess.StartAsync(
            directory.File("clusterqueue.db"),
            new Dictionary<string, string>
            {
                ["Logging:LogLevel:ClusterQueue.Node.Cluster"] = "Information",
                ["Logging:LogLevel:ClusterQueue.Node.Processing"] = "Information",
            });

        var signalled = DateTime.UtcNow;
        await node.TerminateAsync(Generous);

        Assert.Equal(0, node.ExitCode);
        var output = node.Output;
        var draining = output.IndexOf("[311]", StringComparison.Ordinal);
        var ended = output.IndexOf("[757]", StringComparison.Ordinal);
        Assert.True(draining >= 0 && ended > draining, $"expected the drain, then the end of the membership:\n{output}");

        // Without the shortcut a lone member's leave waits for leader ticks; the bound is for a loaded machine.
        Assert.True(DateTime.UtcNow - signalled < TimeSpan.FromSeconds(20), $"exited {DateTime.UtcNow - signalled} after SIGTERM");
    }

    [Theory]
    [InlineData("akka.tcp://clusterqueue@10.0.0.1:4053", true)]
    [InlineData("akka.tcp://clusterqueue@node-a.example:4053", true)]
    [InlineData("akka.tcp://other@10.0.0.1:4053", false)]
    [InlineData("akka.tcp://clusterqueue@10.0.0.1", false)]
    [InlineData("http://clusterqueue@10.0.0.1:4053", false)]
    [InlineData("10.0.0.1:4053", false)]
    public void SeedNodes_MustBeAddressesOfThisSystem(string seed, bool valid)
    {
        var options = new MembershipOptions { SeedNodes = [seed] };

        var errors = options.Validate(new System.ComponentModel.DataAnnotations.ValidationContext(options)).ToList();

        Assert.Equal(valid, errors.Count == 0);
    }

    [Fact]
    public void Tls_NeedsAnExistingCertificate_SeedNodesOfItsTransport_AndWellFormedThumbprints()
    {
        using var directory = new TempDirectory();
        var certificate = directory.File("member.pfx");
        File.WriteAllBytes(certificate, []);
        static List<string> Errors(MembershipOptions options) =>
            [.. options.Validate(new System.ComponentModel.DataAnnotations.ValidationContext(options)).Select(e => e.ErrorMessage!)];

        Assert.Empty(Errors(new MembershipOptions
        {
            SeedNodes = ["akka.ssl.tcp://clusterqueue@10.0.0.1:4053"],
            Tls = new RemotingTlsOptions { CertificatePath = certificate, TrustedThumbprints = [new string('A', 40)] },
        }));
        Assert.Contains(Errors(new MembershipOptions
        {
            SeedNodes = ["akka.tcp://clusterqueue@10.0.0.1:4053"],
            Tls = new RemotingTlsOptions { CertificatePath = certificate },
        }), e => e.Contains("akka.ssl.tcp://", StringComparison.Ordinal));
        Assert.Contains(Errors(new MembershipOptions { Tls = new RemotingTlsOptions { CertificatePath = directory.File("missing.pfx") } }),
            e => e.Contains("is not a file", StringComparison.Ordinal));
        Assert.Contains(Errors(new MembershipOptions { Tls = new RemotingTlsOptions { CertificatePath = certificate, TrustedThumbprints = ["not-hex"] } }),
            e => e.Contains("40 hex digits", StringComparison.Ordinal));
        Assert.Contains(Errors(new MembershipOptions { Tls = new RemotingTlsOptions { TrustedThumbprints = [new string('A', 40)] } }),
            e => e.Contains("TLS is off without a certificate", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Node_WithAMalformedSeedNode_RefusesToStart()
    {
        var error = await Record.ExceptionAsync(async () =>
        {
            await using var node = NodeHost.Start(new Dictionary<string, string?> { ["ClusterQueue:Cluster:SeedNodes:0"] = "127.0.0.1:4053" });
            await node.Client.GetAsync("/healthz");
        });

        Assert.NotNull(error);
        Assert.Contains("SeedNodes", error.ToString(), StringComparison.Ordinal);
    }
}

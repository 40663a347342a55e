using System.ComponentModel.DataAnnotations;
using System.Globalization;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Cluster.Discovery;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Cluster;

/// <summary>
/// Membership in Kubernetes: nodes find each other through the pods API (a stand-in API server on loopback, over TLS,
/// answering as the real one does) and Akka.Management's Cluster Bootstrap, and form one cluster. Each "pod" is a real
/// node process whose pod IP is an address of its own in 127.0.0.0/8 (remoting and management bound there, as in a
/// pod), so several share one machine on the same ports.
/// </summary>
public sealed class KubernetesDiscoveryTests
{
    private const string Namespace = "queues";
    private const string Selector = "app.kubernetes.io/name=clusterqueue,app.kubernetes.io/instance=test";
    private const string Token = "service-account-token";
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Pods_FoundThroughThePodsApi_FormOneCluster_AndAPodScheduledLater_JoinsIt()
    {
        using var directory = new TempDirectory();
        await using var api = await KubernetesApi.StartAsync(Namespace, Selector, Token);
        var serviceAccount = await api.WriteServiceAccountAsync(directory.Path, Token);

        // Like a Deployment's pods: one port number for all, each pod on an IP of its own (a random /24 of loopback,
        // so parallel runs on one machine do not meet).
        var subnet = $"127.{Random.Shared.Next(1, 255)}.{Random.Shared.Next(1, 255)}";
        var management = LoopbackServer.FreePort();
        var remoting = LoopbackServer.FreePort();
        var pods = Enumerable.Range(0, 3).Select(i => new KubernetesPod($"clusterqueue-{i}", $"{subnet}.{i + 2}", management, remoting)).ToArray();
        var nodes = new List<NodeProcess>();
        try
        {
            // Two pods scheduled together, two required: they form the cluster between them.
            api.SetPods(pods[0], pods[1]);
            nodes.AddRange(await Task.WhenAll(StartPodAsync(directory, api, pods[0], serviceAccount), StartPodAsync(directory, api, pods[1], serviceAccount)));
            await AssertMembersAsync(nodes, 2);

            // A third pod scheduled later (a scale-out, a rolling update) joins the cluster the others name.
            api.SetPods(pods);
            nodes.Add(await StartPodAsync(directory, api, pods[2], serviceAccount));
            await AssertMembersAsync(nodes, 3);
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }

        // The pods were listed in the namespace the service account names, by the configured selector, with its token.
        Assert.NotEmpty(api.Requests);
        Assert.All(api.Requests, request => Assert.Equal(new PodListRequest(Namespace, Selector, Token), request));
    }

    [Theory]
    [InlineData("ClusterQueue:Cluster:Discovery", "Consul", "ClusterQueue:Cluster:Discovery")]
    [InlineData("ClusterQueue:Cluster:Kubernetes:ManagementPort", "0", "ClusterQueue:Cluster:Kubernetes:ManagementPort must be between 1 and 65535")]
    [InlineData("ClusterQueue:Cluster:Kubernetes:PodLabelSelector", "app={0}", "ClusterQueue:Cluster:Kubernetes:PodLabelSelector must be a Kubernetes label selector")]
    [InlineData("ClusterQueue:Cluster:Kubernetes:RequiredContactPoints", "0", "ClusterQueue:Cluster:Kubernetes:RequiredContactPoints must be between 1 and 1000")]
    [InlineData("ClusterQueue:Cluster:Kubernetes:Namespace", "Queues_Prod", "ClusterQueue:Cluster:Kubernetes:Namespace must be a Kubernetes namespace name")]
    [InlineData("ClusterQueue:Cluster:Kubernetes:ServiceAccountPath", "serviceaccount", "ClusterQueue:Cluster:Kubernetes:ServiceAccountPath must be an absolute directory path")]
    [InlineData("ClusterQueue:Cluster:RemotingHost", "0.0.0.0", "ClusterQueue:Cluster:PublicHostname must be the pod's IP")]
    [InlineData("ClusterQueue:Cluster:SeedNodes:0", "akka.tcp://clusterqueue@10.0.0.1:4053", "ClusterQueue:Cluster:SeedNodes must be empty when ClusterQueue:Cluster:Discovery is Kubernetes")]
    public async Task Node_WithKubernetesDiscovery_AndABadSetting_RefusesToStart_NamingIt(string key, string value, string expected)
    {
        var settings = new Dictionary<string, string?> { ["ClusterQueue:Cluster:Discovery"] = "Kubernetes", [key] = value };

        var error = await Record.ExceptionAsync(async () =>
        {
            await using var node = NodeHost.Start(settings);
            await node.Client.GetAsync("/healthz");
        });

        Assert.NotNull(error);
        Assert.Contains(expected, error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false, true, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: the node is not running in a Kubernetes pod")]
    [InlineData(true, false, "the pod needs its service account mounted (automountServiceAccountToken: true)")]
    public async Task Node_WithKubernetesDiscovery_OutsideAPodOrWithoutItsServiceAccount_FailsToStart_SayingWhatIsMissing(bool inPod, bool serviceAccount, string expected)
    {
        using var directory = new TempDirectory();
        await using var api = await KubernetesApi.StartAsync(Namespace, Selector, Token);
        var settings = new Dictionary<string, string>(inPod ? api.Environment : new Dictionary<string, string>())
        {
            ["ClusterQueue:Cluster:Discovery"] = "Kubernetes",
            ["ClusterQueue:Cluster:Kubernetes:ServiceAccountPath"] = serviceAccount ? await api.WriteServiceAccountAsync(directory.Path, Token) : directory.Path,
        };

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => NodeProcess.StartAsync(
            directory.File("clusterqueue.db"), settings, unset: inPod ? [] : ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Empty(api.Requests);
    }

    [Fact]
    public void KubernetesSettings_AreNotChecked_WhenDiscoveryIsConfig()
    {
        var options = new MembershipOptions
        {
            SeedNodes = ["akka.tcp://clusterqueue@10.0.0.1:4053"],
            Kubernetes = new KubernetesOptions { ManagementPort = 0, PodLabelSelector = "" },
        };

        Assert.Empty(options.Validate(new ValidationContext(options)));
        Assert.False(options.JoinsItself());
    }

    [Fact]
    public void Defaults_WithKubernetesDiscovery_AreValid_AndTheNodeDoesNotJoinItself()
    {
        var options = new MembershipOptions { Discovery = MembershipDiscovery.Kubernetes, RemotingHost = "0.0.0.0", PublicHostname = "10.1.2.3" };

        Assert.Empty(options.Validate(new ValidationContext(options)));
        Assert.False(options.JoinsItself());
        Assert.True(new MembershipOptions().JoinsItself());
    }

    private static async Task<NodeProcess> StartPodAsync(TempDirectory directory, KubernetesApi api, KubernetesPod pod, string serviceAccount)
    {
        var settings = new Dictionary<string, string>(api.Environment)
        {
            ["ClusterQueue:Cluster:Discovery"] = "Kubernetes",
            ["ClusterQueue:Cluster:RemotingHost"] = pod.Ip,
            ["ClusterQueue:Cluster:RemotingPort"] = pod.RemotingPort.ToString(CultureInfo.InvariantCulture),
            ["ClusterQueue:Cluster:Kubernetes:PodLabelSelector"] = Selector,
            ["ClusterQueue:Cluster:Kubernetes:ManagementPort"] = pod.ManagementPort.ToString(CultureInfo.InvariantCulture),
            ["ClusterQueue:Cluster:Kubernetes:RequiredContactPoints"] = "2",
            ["ClusterQueue:Cluster:Kubernetes:ServiceAccountPath"] = serviceAccount,
            ["Logging:LogLevel:ClusterQueue.Node.Cluster"] = "Information",
        };

        // Ready means the member is Up: it joined (or formed) a cluster through the bootstrap.
        return await NodeProcess.StartAsync(directory.File($"{pod.Name}.db"), settings);
    }

    /// <summary>Every node counts the same members: one cluster, not several that each formed alone.</summary>
    private static async Task AssertMembersAsync(IReadOnlyList<NodeProcess> nodes, int members)
    {
        foreach (var node in nodes)
        {
            await Eventually.ReadAsync(
                async () => Exposition.Value(await node.Client.GetStringAsync("/metrics"), "clusterqueue_cluster_members"),
                count => count == members,
                $"{members} members seen by {node.BaseAddress}\n{node.Output}",
                Generous);
        }
    }
}

using ClusterQueue.Node.Cluster.Discovery;
using ClusterQueue.Tests.Support;
using k8s.Autorest;

namespace ClusterQueue.Tests.Cluster;

/// <summary>
/// The pods list Cluster Bootstrap gets its contact points from, read from a stand-in API server over TLS with a
/// service account of the test's own: which pods count, and what an operator sees when the API server refuses.
/// </summary>
public sealed class KubernetesPodsTests
{
    private const string Namespace = "queues";
    private const string Selector = "app.kubernetes.io/name=clusterqueue";
    private const string Token = "service-account-token";

    [Fact]
    public async Task List_ReturnsRunningPods_WithTheirNamedManagementPort()
    {
        using var directory = new TempDirectory();
        await using var api = await KubernetesApi.StartAsync(Namespace, Selector, Token);
        api.SetPods(
            new KubernetesPod("clusterqueue-a", "10.1.0.7", ManagementPort: 8558, RemotingPort: 4053),
            new KubernetesPod("clusterqueue-b", "10.1.0.8", ManagementPort: 9000, RemotingPort: 4053),
            new KubernetesPod("clusterqueue-c", "10.1.0.9", ManagementPort: 8558, RemotingPort: 4053, Phase: "Pending"));
        using var pods = Connect(api, await api.WriteServiceAccountAsync(directory.Path, Token), new CapturedLogs());

        var targets = await pods.ListAsync(KubernetesOptions.ManagementPortName, CancellationToken.None);

        // A pending pod cannot answer a probe; each running one is reached on its own "management" port.
        Assert.Equal([("10.1.0.7", 8558), ("10.1.0.8", 9000)], targets.Select(t => (t.Host, t.Port ?? 0)).Order());
        Assert.All(targets, t => Assert.Equal(t.Host, t.Address.ToString()));
        Assert.Equal(new PodListRequest(Namespace, Selector, Token), Assert.Single(api.Requests));
    }

    [Fact]
    public async Task List_WithAPortNameNoPodDeclares_ReturnsNoPods()
    {
        using var directory = new TempDirectory();
        await using var api = await KubernetesApi.StartAsync(Namespace, Selector, Token);
        api.SetPods(new KubernetesPod("clusterqueue-a", "10.1.0.7", ManagementPort: 8558, RemotingPort: 4053));
        using var pods = Connect(api, await api.WriteServiceAccountAsync(directory.Path, Token), new CapturedLogs());

        // Exact names, as Kubernetes matches a named port: "manage" is not "management".
        Assert.Empty(await pods.ListAsync("manage", CancellationToken.None));
    }

    [Fact]
    public async Task List_WhenTheApiServerRefusesTheToken_FailsAndLogsWhy()
    {
        using var directory = new TempDirectory();
        await using var api = await KubernetesApi.StartAsync(Namespace, Selector, Token);
        var logs = new CapturedLogs();
        using var pods = Connect(api, await api.WriteServiceAccountAsync(directory.Path, "a-stale-token"), logs);

        // The failure reaches Cluster Bootstrap (which retries with backoff); the log says what to fix.
        await Assert.ThrowsAsync<HttpOperationException>(() => pods.ListAsync(KubernetesOptions.ManagementPortName, CancellationToken.None));

        var warning = Assert.Single(logs.Entries, e => e.EventId.Id == 781);
        Assert.Contains("401: the API server refused the service-account token", warning.Message, StringComparison.Ordinal);
    }

    private static KubernetesPods Connect(KubernetesApi api, string serviceAccount, CapturedLogs logs) =>
        KubernetesPods.Connect(
            new KubernetesOptions { PodLabelSelector = Selector, ServiceAccountPath = serviceAccount },
            logs.CreateLogger("test"),
            name => api.Environment.GetValueOrDefault(name));
}

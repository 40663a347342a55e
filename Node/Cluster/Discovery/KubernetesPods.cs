using System.Net;
using System.Security.Cryptography.X509Certificates;
using Akka.Discovery;
using k8s;
using k8s.Authentication;
using k8s.Autorest;
using k8s.Models;

namespace ClusterQueue.Node.Cluster.Discovery;

/// <summary>
/// This deployment's pods as the API server lists them (GET /api/v1/namespaces/{ns}/pods?labelSelector=...), read with
/// the pod's service account: its token (re-read as Kubernetes rotates it), its namespace and the cluster's CA, all
/// from <see cref="KubernetesOptions.ServiceAccountPath"/>; the API server's address from the variables Kubernetes
/// gives every container.
/// </summary>
internal sealed class KubernetesPods : IDisposable
{
    private const string HostVariable = "KUBERNETES_SERVICE_HOST";
    private const string PortVariable = "KUBERNETES_SERVICE_PORT";

    private readonly Kubernetes _client;
    private readonly ILogger _logger;

    private KubernetesPods(Kubernetes client, string @namespace, string selector, ILogger logger)
    {
        _client = client;
        Namespace = @namespace;
        Selector = selector;
        _logger = logger;
    }

    public string Namespace { get; }

    public string Selector { get; }

    /// <summary>
    /// A client for the API server this pod runs under. Outside a pod, or without a mounted service account, the start
    /// fails here with what is missing, rather than the node waiting for a cluster it can never find.
    /// </summary>
    public static KubernetesPods Connect(KubernetesOptions options, ILogger logger) =>
        Connect(options, logger, Environment.GetEnvironmentVariable);

    internal static KubernetesPods Connect(KubernetesOptions options, ILogger logger, Func<string, string?> environment)
    {
        var host = environment(HostVariable);
        var port = environment(PortVariable);
        if (string.IsNullOrWhiteSpace(host) || !int.TryParse(port, out var portNumber))
        {
            throw new InvalidOperationException(
                $"ClusterQueue:Cluster:Discovery is Kubernetes, but {HostVariable} and {PortVariable} are not set: the node is not running in a Kubernetes pod.");
        }

        var token = Path.Combine(options.ServiceAccountPath, "token");
        var authority = Path.Combine(options.ServiceAccountPath, "ca.crt");
        var namespaceFile = Path.Combine(options.ServiceAccountPath, "namespace");
        foreach (var file in options.Namespace is null ? [token, authority, namespaceFile] : new[] { token, authority })
        {
            if (!File.Exists(file))
            {
                throw new InvalidOperationException(
                    $"ClusterQueue:Cluster:Discovery is Kubernetes, but there is no {file}: the pod needs its service account mounted (automountServiceAccountToken: true) to list the other pods (ClusterQueue:Cluster:Kubernetes:ServiceAccountPath).");
            }
        }

        var authorities = new X509Certificate2Collection();
        authorities.ImportFromPemFile(authority);
        var configuration = new KubernetesClientConfiguration
        {
            Host = new UriBuilder(Uri.UriSchemeHttps, host, portNumber).Uri.ToString(),
            TokenProvider = new TokenFileAuth(token),
            SslCaCerts = authorities,
        };
        var @namespace = options.Namespace ?? File.ReadAllText(namespaceFile).Trim();
        return new KubernetesPods(new Kubernetes(configuration), @namespace, options.PodLabelSelector, logger);
    }

    /// <summary>The running pods, each with its container port named <paramref name="portName"/> (pods without it are left out).</summary>
    public async Task<IReadOnlyList<ServiceDiscovery.ResolvedTarget>> ListAsync(string? portName, CancellationToken cancellationToken)
    {
        try
        {
            var pods = await _client.CoreV1.ListNamespacedPodAsync(Namespace, labelSelector: Selector, cancellationToken: cancellationToken);
            var targets = Targets(pods, portName).ToList();
            Log.PodsListed(_logger, pods.Items.Count, targets.Count, string.Join(", ", targets.Select(t => $"{t.Host}:{t.Port}")));
            return targets;
        }
        catch (HttpOperationException ex)
        {
            var hint = ex.Response.StatusCode switch
            {
                HttpStatusCode.Unauthorized => "the API server refused the service-account token",
                HttpStatusCode.Forbidden => "the service account may not list pods here: it needs a Role with get, watch and list on pods, bound to it",
                _ => "the API server answered with an error",
            };
            Log.ListFailed(_logger, Namespace, Selector, $"{(int)ex.Response.StatusCode}: {hint}", ex);
            throw;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or KubernetesException)
        {
            Log.ListFailed(_logger, Namespace, Selector, ex.Message, ex);
            throw;
        }
    }

    /// <summary>
    /// Pods that can answer: Running, not being deleted, with an IP, and with the named port (by exact name, as
    /// Kubernetes resolves a named targetPort).
    /// </summary>
    internal static IEnumerable<ServiceDiscovery.ResolvedTarget> Targets(V1PodList pods, string? portName)
    {
        foreach (var pod in pods.Items ?? [])
        {
            if (pod.Metadata?.DeletionTimestamp is not null
                || pod.Status?.Phase != "Running"
                || !IPAddress.TryParse(pod.Status.PodIP, out var address))
            {
                continue;
            }

            int? port = null;
            if (!string.IsNullOrEmpty(portName))
            {
                port = (pod.Spec?.Containers ?? [])
                    .SelectMany(c => c.Ports ?? [])
                    .FirstOrDefault(p => p.Name == portName)?.ContainerPort;
                if (port is null)
                {
                    continue;
                }
            }

            yield return new ServiceDiscovery.ResolvedTarget(pod.Status.PodIP, port, address);
        }
    }

    public void Dispose() => _client.Dispose();
}

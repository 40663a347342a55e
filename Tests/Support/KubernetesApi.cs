using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ClusterQueue.Tests.Support;

/// <summary>A pod as the API server lists it: its name, its IP, and its named container ports.</summary>
public sealed record KubernetesPod(string Name, string Ip, int ManagementPort, int RemotingPort, string Phase = "Running");

/// <summary>One request to the pods API: the namespace in its path, its labelSelector and the bearer token it carried.</summary>
public sealed record PodListRequest(string Namespace, string? LabelSelector, string? Token);

/// <summary>
/// A stand-in for the Kubernetes API server on loopback, over TLS with a certificate of its own: it answers
/// GET /api/v1/namespaces/{ns}/pods?labelSelector=... with a v1 PodList the way the real one does (401 without the
/// expected bearer token, an empty list for another namespace or selector), and records each request. A process
/// reaches it through <see cref="Environment"/> (KUBERNETES_SERVICE_HOST/PORT, as Kubernetes sets them in every
/// container) and trusts it through <see cref="CertificatePem"/>, as a pod trusts its cluster's CA.
/// </summary>
public sealed class KubernetesApi : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<PodListRequest> _requests = new();
    private readonly string _namespace;
    private readonly string _selector;
    private readonly string _token;
    private readonly Dictionary<string, string> _labels;
    private ImmutableList<KubernetesPod> _pods = [];

    private KubernetesApi(WebApplication app, string @namespace, string selector, string token)
    {
        _app = app;
        _namespace = @namespace;
        _selector = selector;
        _token = token;
        _labels = selector.Split(',').Select(pair => pair.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
    }

    public int Port { get; private set; }

    /// <summary>The server's certificate, PEM-encoded: the CA a pod finds as ca.crt beside its service-account token.</summary>
    public string CertificatePem { get; private set; } = "";

    public IReadOnlyList<PodListRequest> Requests => [.. _requests];

    /// <summary>The variables a node process needs to call this server as a pod calls its API server.</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>
    {
        ["KUBERNETES_SERVICE_HOST"] = "127.0.0.1",
        ["KUBERNETES_SERVICE_PORT"] = Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// Starts the server. It lists pods only for <paramref name="namespace"/> and the exact
    /// <paramref name="selector"/> (comma-separated key=value pairs, which also become the pods' labels), and only to
    /// callers presenting <paramref name="token"/>.
    /// </summary>
    public static async Task<KubernetesApi> StartAsync(string @namespace, string selector, string token)
    {
        var certificate = SelfSigned();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(certificate)));
        var app = builder.Build();
        var api = new KubernetesApi(app, @namespace, selector, token);
        app.Run(api.HandleAsync);
        await app.StartAsync();
        var address = new Uri(app.Urls.First());
        api.Port = address.Port;
        api.CertificatePem = certificate.ExportCertificatePem();
        return api;
    }

    /// <summary>
    /// Writes what Kubernetes mounts in a pod for its service account (token, namespace, the cluster's CA) into a new
    /// directory under <paramref name="parent"/>, and returns that directory.
    /// </summary>
    public async Task<string> WriteServiceAccountAsync(string parent, string token)
    {
        var path = Directory.CreateDirectory(Path.Combine(parent, "serviceaccount")).FullName;
        await File.WriteAllTextAsync(Path.Combine(path, "token"), token);
        await File.WriteAllTextAsync(Path.Combine(path, "namespace"), _namespace + "\n");
        await File.WriteAllTextAsync(Path.Combine(path, "ca.crt"), CertificatePem);
        return path;
    }

    /// <summary>Replaces the pods the server lists (a pod scheduled, or gone).</summary>
    public void SetPods(params KubernetesPod[] pods) => _pods = [.. pods];

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "";
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var authorization = context.Request.Headers.Authorization.ToString();
        var token = authorization.StartsWith("Bearer ", StringComparison.Ordinal) ? authorization["Bearer ".Length..] : null;
        if (context.Request.Method != HttpMethods.Get || parts is not ["api", "v1", "namespaces", var ns, "pods"])
        {
            await StatusAsync(context, HttpStatusCode.NotFound, "NotFound", $"the server could not find the requested resource ({path})");
            return;
        }

        string? selector = context.Request.Query["labelSelector"];
        _requests.Enqueue(new PodListRequest(ns, selector, token));
        if (token != _token)
        {
            await StatusAsync(context, HttpStatusCode.Unauthorized, "Unauthorized", "Unauthorized");
            return;
        }

        var listed = ns == _namespace && selector == _selector ? _pods : [];
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(PodList(listed).ToJsonString());
    }

    private JsonObject PodList(IEnumerable<KubernetesPod> pods) => new()
    {
        ["kind"] = "PodList",
        ["apiVersion"] = "v1",
        ["metadata"] = new JsonObject { ["resourceVersion"] = "1000" },
        ["items"] = new JsonArray([.. pods.Select(Pod)]),
    };

    private JsonObject Pod(KubernetesPod pod) => new()
    {
        ["metadata"] = new JsonObject
        {
            ["name"] = pod.Name,
            ["namespace"] = _namespace,
            ["uid"] = Guid.NewGuid().ToString(),
            ["labels"] = new JsonObject([.. _labels.Select(l => KeyValuePair.Create(l.Key, (JsonNode?)JsonValue.Create(l.Value)))]),
        },
        ["spec"] = new JsonObject
        {
            ["containers"] = new JsonArray(new JsonObject
            {
                ["name"] = "clusterqueue",
                ["image"] = "clusterqueue:test",
                ["ports"] = new JsonArray(
                    new JsonObject { ["name"] = "http", ["containerPort"] = 8080, ["protocol"] = "TCP" },
                    new JsonObject { ["name"] = "remoting", ["containerPort"] = pod.RemotingPort, ["protocol"] = "TCP" },
                    new JsonObject { ["name"] = "management", ["containerPort"] = pod.ManagementPort, ["protocol"] = "TCP" }),
            }),
        },
        ["status"] = new JsonObject
        {
            ["phase"] = pod.Phase,
            ["podIP"] = pod.Ip,
            ["podIPs"] = new JsonArray(new JsonObject { ["ip"] = pod.Ip }),
            ["containerStatuses"] = new JsonArray(new JsonObject
            {
                ["name"] = "clusterqueue",
                ["ready"] = false,
                ["restartCount"] = 0,
                ["image"] = "clusterqueue:test",
                ["imageID"] = "",
                ["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = "2026-01-01T00:00:00Z" } },
            }),
        },
    };

    private static Task StatusAsync(HttpContext context, HttpStatusCode code, string reason, string message)
    {
        context.Response.StatusCode = (int)code;
        context.Response.ContentType = "application/json";
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
            ["code"] = (int)code,
        };
        return context.Response.WriteAsync(status.ToJsonString());
    }

    /// <summary>A self-signed server certificate for 127.0.0.1, valid for the test's lifetime.</summary>
    private static X509Certificate2 SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=kubernetes-api-stand-in", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));

        // Kestrel needs the key in a form it can use for TLS; a PFX round trip gives it one on every platform.
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), null);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

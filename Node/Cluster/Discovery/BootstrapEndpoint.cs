using System.Collections.Immutable;
using System.Net;
using Akka;
using Akka.Actor;
using Akka.Cluster;
using Akka.Management.Cluster.Bootstrap;
using Akka.Management.Cluster.Bootstrap.ContactPoint;
using Akka.Management.Dsl;
using Newtonsoft.Json;

namespace ClusterQueue.Node.Cluster.Discovery;

/// <summary>
/// The contact point Cluster Bootstrap probes on every pod it finds: GET /bootstrap/seed-nodes on the management
/// port answers with this member's address and the members it sees Up, in Akka.Management's own JSON (its protocol
/// types, through Newtonsoft as its prober reads them). Served by a Kestrel of its own rather than Akka.Management's
/// HTTP server: that one runs on Ceen.Httpd, and the only Ceen.Httpd the registry serves (0.9.10) lacks the method
/// Akka.Http.Shim 1.5.73 calls (MissingMethodException at start). A port of its own, not the API's, because peers
/// find it by the container port named "management" and it must listen on the pod's address.
/// </summary>
internal sealed class BootstrapEndpoint
{
    private const string SeedNodesPath = "/bootstrap/seed-nodes";

    /// <summary>Akka.Management's own cap: a joiner needs only a few live members to join through.</summary>
    private const int MaxSeedNodesToExpose = 5;

    private readonly Akka.Cluster.Cluster _cluster;

    private BootstrapEndpoint(Akka.Cluster.Cluster cluster) => _cluster = cluster;

    /// <summary>
    /// Listens on <paramref name="bindHost"/>:<paramref name="port"/>, tells Cluster Bootstrap that this node is the
    /// contact point at <paramref name="advertisedHost"/> (so it knows itself among the pods found), and starts it.
    /// The endpoint stops before the cluster extension does on shutdown, as Akka.Management's own would.
    /// </summary>
    public static async Task StartAsync(ActorSystem system, string bindHost, string advertisedHost, int port)
    {
        var builder = WebApplication.CreateSlimBuilder();

        // Nothing of the node's own configuration (its URLs, a Kestrel section) applies to this listener.
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(ListenAddress(bindHost), port));
        var app = builder.Build();
        var endpoint = new BootstrapEndpoint(Akka.Cluster.Cluster.Get(system));
        app.MapGet(SeedNodesPath, endpoint.SeedNodes);
        await app.StartAsync();
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeClusterShutdown, "bootstrap-endpoint-stop", async () =>
        {
            await app.DisposeAsync();
            return Done.Instance;
        });

        var self = new UriBuilder(Uri.UriSchemeHttp, advertisedHost, port).Uri;
        var bootstrap = ClusterBootstrap.Get(system);

        // Routes() is how a host serving the contact point itself hands Bootstrap its own address; the Ceen routes it
        // returns are not used.
        _ = bootstrap.Routes(ManagementRouteProviderSettings.Create(self, readOnly: true));
        await bootstrap.Start();
    }

    private IResult SeedNodes()
    {
        var self = _cluster.SelfMember;

        // A member that is leaving (or gone) names nobody: a joiner must not join through it.
        if (self.Status is MemberStatus.Leaving or MemberStatus.Exiting or MemberStatus.Down or MemberStatus.Removed)
        {
            return Json(new HttpBootstrapJsonProtocol.SeedNodes(self.Address, []));
        }

        var state = _cluster.State;
        var members = state.Members
            .Where(m => !state.Unreachable.Contains(m) && m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining)
            .Take(MaxSeedNodesToExpose)
            .Select(m => new HttpBootstrapJsonProtocol.ClusterMember(m.UniqueAddress.Address, m.UniqueAddress.Uid, m.Status, m.Roles))
            .ToImmutableList();
        return Json(new HttpBootstrapJsonProtocol.SeedNodes(self.Address, members));
    }

    private static IResult Json(HttpBootstrapJsonProtocol.SeedNodes seedNodes) =>
        Results.Text(JsonConvert.SerializeObject(seedNodes), "application/json");

    private static IPAddress ListenAddress(string host) =>
        IPAddress.TryParse(host, out var address) ? address
        : host == "localhost" ? IPAddress.Loopback
        : Dns.GetHostAddresses(host).First(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);
}

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace ClusterQueue.Tests.Admin;

/// <summary>
/// Who may use /v1. Without an admin token the node trusts loopback clients, and a browser on the operator's machine is
/// one: these tests send what a hostile web page can make that browser send (a cross-site "simple" POST, a DNS-rebinding
/// host name) over a real loopback TCP connection to the node under Kestrel, and what curl sends, which must keep working.
/// </summary>
public sealed class AdminAccessTests
{
    private const string Unreachable = "http://127.0.0.1:9/hook";
    private const string AttackerTarget = "http://attacker.example/steal";

    [Fact]
    public async Task Purge_FromCrossSitePageAsTextPlain_Returns403AndPurgesNothing()
    {
        await using var node = await LoopbackNode.StartAsync();
        await node.DefineHeldGroupAsync("orders", queued: 3);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/groups/orders/purge?confirm=orders")
        {
            Content = new StringContent("{}", Encoding.UTF8, "text/plain"),
        };
        request.Headers.TryAddWithoutValidation("Origin", "https://evil.example");
        request.Headers.TryAddWithoutValidation("Sec-Fetch-Site", "cross-site");

        using var response = await node.Client.SendAsync(request);

        var problem = await Problems.ReadAsync(response, HttpStatusCode.Forbidden);
        Assert.Contains("https://evil.example", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(3, (await node.StatsAsync("orders")).Queued);
    }

    [Theory]
    [InlineData("POST", "/v1/groups/orders/pause")]
    [InlineData("POST", "/v1/groups/orders/dead-letters/purge?confirm=orders")]
    [InlineData("DELETE", "/v1/groups/orders")]
    public async Task StateChange_FromCrossSitePageWithoutBody_Returns403AndChangesNothing(string method, string path)
    {
        await using var node = await LoopbackNode.StartAsync();
        await node.DefineHeldGroupAsync("orders", queued: 1, paused: false);
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        request.Headers.TryAddWithoutValidation("Origin", "https://evil.example");

        using var response = await node.Client.SendAsync(request);

        await Problems.ReadAsync(response, HttpStatusCode.Forbidden);
        var group = (await node.Client.GetFromJsonAsync<GroupResponse>("/v1/groups/orders"))!;
        Assert.False(group.Paused);
    }

    [Theory]
    [InlineData("rebind.evil.example:{port}")]
    [InlineData("rebind.evil.example")]
    [InlineData("127.0.0.1.nip.io:{port}")]
    [InlineData("localhost.evil.example:{port}")]
    [InlineData("app.localhost:{port}")]
    [InlineData("localhost.:{port}")]
    public async Task Put_WithHostThatIsNotLoopback_Returns403AndLeavesGroupUnchanged(string host)
    {
        await using var node = await LoopbackNode.StartAsync();
        await node.DefineHeldGroupAsync("orders", queued: 0);
        using var request = new HttpRequestMessage(HttpMethod.Put, "/v1/groups/orders")
        {
            Content = JsonContent.Create(new GroupDefinition { RatePerSecond = 1000, Burst = 1000, MaxConcurrency = 100, Target = new TargetDefinition { Url = AttackerTarget } }),
        };
        request.Headers.Host = node.Expand(host);

        using var response = await node.Client.SendAsync(request);

        var problem = await Problems.ReadAsync(response, HttpStatusCode.Forbidden);
        Assert.Contains("Host", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var group = (await node.Client.GetFromJsonAsync<GroupResponse>("/v1/groups/orders"))!;
        Assert.Equal(Unreachable, group.Target.Url);
    }

    [Fact]
    public async Task Get_WithRebindingHost_Returns403()
    {
        await using var node = await LoopbackNode.StartAsync();
        await node.DefineHeldGroupAsync("orders", queued: 0);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/groups");
        request.Headers.Host = node.Expand("rebind.evil.example:{port}");

        using var response = await node.Client.SendAsync(request);

        await Problems.ReadAsync(response, HttpStatusCode.Forbidden);
    }

    [Theory]
    [InlineData("cross-site")]
    [InlineData("same-site")]
    public async Task Pause_WithSecFetchSiteOfAnotherOrigin_Returns403AndDoesNotPause(string site)
    {
        await using var node = await LoopbackNode.StartAsync();
        await node.DefineHeldGroupAsync("orders", queued: 0, paused: false);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/groups/orders/pause");
        request.Headers.TryAddWithoutValidation("Sec-Fetch-Site", site);

        using var response = await node.Client.SendAsync(request);

        await Problems.ReadAsync(response, HttpStatusCode.Forbidden);
        Assert.False((await node.Client.GetFromJsonAsync<GroupResponse>("/v1/groups/orders"))!.Paused);
    }

    [Theory]
    [InlineData("null")]
    [InlineData("https://evil.example")]
    [InlineData("http://127.0.0.1:{other}")]
    [InlineData("https://127.0.0.1:{port}")]
    [InlineData("http://localhost:{port}")]
    public async Task Pause_WithOriginNotTheNodesOwn_Returns403AndDoesNotPause(string origin)
    {
        await using var node = await LoopbackNode.StartAsync();
        await node.DefineHeldGroupAsync("orders", queued: 0, paused: false);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/groups/orders/pause");
        request.Headers.TryAddWithoutValidation("Origin", node.Expand(origin));

        using var response = await node.Client.SendAsync(request);

        await Problems.ReadAsync(response, HttpStatusCode.Forbidden);
        Assert.False((await node.Client.GetFromJsonAsync<GroupResponse>("/v1/groups/orders"))!.Paused);
    }

    [Theory]
    [InlineData("127.0.0.1:{port}", "http://127.0.0.1:{port}")]
    [InlineData("localhost:{port}", "http://localhost:{port}")]
    [InlineData("LocalHost:{port}", "http://localhost:{port}")]
    public async Task StateChanges_FromTheNodesOwnOrigin_Work(string host, string origin)
    {
        await using var node = await LoopbackNode.StartAsync();
        await node.DefineHeldGroupAsync("orders", queued: 2, paused: false);

        using var put = await node.SendFromPageAsync(HttpMethod.Put, "/v1/groups/orders", host, origin, """{"ratePerSecond":5,"burst":5,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/other"}}""");
        using var pause = await node.SendFromPageAsync(HttpMethod.Post, "/v1/groups/orders/pause", host, origin);
        using var purge = await node.SendFromPageAsync(HttpMethod.Post, "/v1/groups/orders/purge?confirm=orders", host, origin);

        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
        Assert.Equal(HttpStatusCode.OK, purge.StatusCode);
        Assert.Equal(2, (await purge.Content.ReadFromJsonAsync<PurgeResult>())!.Purged);
        var group = (await node.Client.GetFromJsonAsync<GroupResponse>("/v1/groups/orders"))!;
        Assert.Equal("http://127.0.0.1:9/other", group.Target.Url);
        Assert.True(group.Paused);
    }

    [Theory]
    [InlineData("localhost:{port}")]
    [InlineData("localhost")]
    [InlineData("127.0.0.1:{port}")]
    [InlineData("127.8.9.10:{port}")]
    [InlineData("[::1]:{port}")]
    [InlineData("[::1]")]
    public async Task CurlLikeRequests_ToALoopbackHost_Work(string host)
    {
        await using var node = await LoopbackNode.StartAsync();
        var name = node.Expand(host);

        using var put = await node.SendAsync(HttpMethod.Put, "/v1/groups/orders", name, """{"ratePerSecond":5,"burst":10,"maxConcurrency":2,"target":{"url":"http://127.0.0.1:9/hook"}}""");
        using var patch = await node.SendAsync(HttpMethod.Patch, "/v1/groups/orders", name, """{"burst":4}""");
        using var list = await node.SendAsync(HttpMethod.Get, "/v1/groups", name);
        using var stats = await node.SendAsync(HttpMethod.Get, "/v1/groups/orders/stats", name);
        using var pause = await node.SendAsync(HttpMethod.Post, "/v1/groups/orders/pause", name);
        using var redrive = await node.SendAsync(HttpMethod.Post, "/v1/groups/orders/dead-letters/redrive", name);
        using var redriveByTime = await node.SendAsync(HttpMethod.Post, "/v1/groups/orders/dead-letters/redrive", name, """{"deadAfter":"2026-11-22T08:00:00Z"}""");
        using var purgeDead = await node.SendAsync(HttpMethod.Post, "/v1/groups/orders/dead-letters/purge?confirm=orders", name);
        using var purge = await node.SendAsync(HttpMethod.Post, "/v1/groups/orders/purge?confirm=orders", name);
        using var resume = await node.SendAsync(HttpMethod.Post, "/v1/groups/orders/resume", name);
        using var delete = await node.SendAsync(HttpMethod.Delete, "/v1/groups/orders", name);

        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal(
            [HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK],
            new[] { patch, list, stats, pause, redrive, redriveByTime, purgeDead, purge, resume }.Select(r => r.StatusCode));
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
    }

    [Fact]
    public async Task Get_TypedIntoTheAddressBar_Works()
    {
        await using var node = await LoopbackNode.StartAsync();
        await node.DefineHeldGroupAsync("orders", queued: 0);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/groups/orders");
        request.Headers.TryAddWithoutValidation("Sec-Fetch-Site", "none");

        using var response = await node.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("multipart/form-data; boundary=x")]
    [InlineData(null)]
    public async Task Purge_WithABodyThatIsNotJson_Returns400NamingBodyAndPurgesNothing(string? contentType)
    {
        await using var node = await LoopbackNode.StartAsync();
        await node.DefineHeldGroupAsync("orders", queued: 2);
        var content = new ByteArrayContent("confirm=orders"u8.ToArray());
        if (contentType is not null)
        {
            content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }

        using var response = await node.Client.PostAsync("/v1/groups/orders/purge?confirm=orders", content);

        await Problems.AssertValidationErrorAsync(response, "body");
        Assert.Equal(2, (await node.StatsAsync("orders")).Queued);
    }

    [Fact]
    public async Task Pause_WithAChunkedBodyThatIsNotJson_Returns400NamingBodyAndDoesNotPause()
    {
        await using var node = await LoopbackNode.StartAsync();
        await node.DefineHeldGroupAsync("orders", queued: 0, paused: false);
        var content = new StringContent("pause", Encoding.UTF8, "text/plain");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/groups/orders/pause") { Content = content };
        request.Headers.TransferEncodingChunked = true;

        using var response = await node.Client.SendAsync(request);

        await Problems.AssertValidationErrorAsync(response, "body");
        Assert.False((await node.Client.GetFromJsonAsync<GroupResponse>("/v1/groups/orders"))!.Paused);
    }

    [Fact]
    public async Task TokenMode_WithTheToken_AnswersAnyHostAndOrigin()
    {
        await using var node = await LoopbackNode.StartAsync(NodeHost.AdminToken);
        node.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", NodeHost.AdminToken);
        await node.DefineHeldGroupAsync("orders", queued: 0, paused: false);

        using var pause = await node.SendFromPageAsync(HttpMethod.Post, "/v1/groups/orders/pause", "queue.internal.example:{port}", "https://dashboard.example");
        using var list = await node.SendAsync(HttpMethod.Get, "/v1/groups", "queue.internal.example");

        Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
    }

    [Fact]
    public async Task TokenMode_WithoutTheToken_Returns401EvenFromLoopback()
    {
        await using var node = await LoopbackNode.StartAsync(NodeHost.AdminToken);

        using var response = await node.SendAsync(HttpMethod.Get, "/v1/groups", "localhost:{port}");

        await Problems.ReadAsync(response, HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task TokenMode_WithABodyThatIsNotJson_Returns400NamingBodyAndPurgesNothing()
    {
        await using var node = await LoopbackNode.StartAsync(NodeHost.AdminToken);
        node.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", NodeHost.AdminToken);
        await node.DefineHeldGroupAsync("orders", queued: 2);

        using var response = await node.Client.PostAsync("/v1/groups/orders/purge?confirm=orders", new StringContent("x", Encoding.UTF8, "text/plain"));

        await Problems.AssertValidationErrorAsync(response, "body");
        Assert.Equal(2, (await node.StatsAsync("orders")).Queued);
    }

    /// <summary>The node under real Kestrel on a loopback port, with no admin token unless one is given.</summary>
    private sealed class LoopbackNode : IAsyncDisposable
    {
        private readonly TempDirectory _directory;
        private readonly WebApplicationFactory<Program> _factory;

        private LoopbackNode(TempDirectory directory, WebApplicationFactory<Program> factory)
        {
            _directory = directory;
            _factory = factory;
            Client = factory.CreateClient();
            Port = Client.BaseAddress!.Port;
        }

        /// <summary>Sends what curl sends: no Origin, no Sec-Fetch-* headers, the Host the URL named.</summary>
        public HttpClient Client { get; }

        public int Port { get; }

        public static Task<LoopbackNode> StartAsync(string token = "")
        {
            var directory = new TempDirectory();
            var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
            {
                builder.UseSetting("urls", "http://127.0.0.1:0");
                builder.UseSetting("ClusterQueue:Sqlite:Path", directory.File("clusterqueue.db"));
                builder.UseSetting("ClusterQueue:AdminToken", token);
                builder.UseSetting("Logging:LogLevel:Default", "Warning");
            });
            factory.UseKestrel();
            factory.StartServer();
            return Task.FromResult(new LoopbackNode(directory, factory));
        }

        /// <summary>Fills in {port} (this node's) and {other} (another loopback port).</summary>
        public string Expand(string text) =>
            text.Replace("{port}", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
                .Replace("{other}", (Port == 65535 ? Port - 1 : Port + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

        /// <summary>A paused group (nothing is handed to its target) holding <paramref name="queued"/> messages.</summary>
        public async Task DefineHeldGroupAsync(string id, int queued, bool paused = true)
        {
            var definition = new GroupDefinition { RatePerSecond = 1, Burst = 1, MaxConcurrency = 1, Target = new TargetDefinition { Url = Unreachable } };
            using var put = await Client.PutAsJsonAsync($"/v1/groups/{id}", definition);
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            using var pause = await Client.PostAsync($"/v1/groups/{id}/pause", null);
            Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
            for (var i = 0; i < queued; i++)
            {
                using var ingest = await Client.PostAsync($"/hooks/{id}", new StringContent($$"""{"n":{{i}}}""", Encoding.UTF8, "application/json"));
                Assert.Equal(HttpStatusCode.Accepted, ingest.StatusCode);
            }

            Assert.Equal(queued, (await StatsAsync(id)).Queued);
            if (!paused)
            {
                using var resume = await Client.PostAsync($"/v1/groups/{id}/resume", null);
                Assert.Equal(HttpStatusCode.OK, resume.StatusCode);
            }
        }

        public async Task<GroupStats> StatsAsync(string id) => (await Client.GetFromJsonAsync<GroupStats>($"/v1/groups/{id}/stats"))!;

        /// <summary>A request as curl sends it to <paramref name="host"/>: JSON when there is a body, nothing else.</summary>
        public Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string host, string? json = null)
        {
            var request = new HttpRequestMessage(method, path);
            request.Headers.Host = Expand(host);
            if (json is not null)
            {
                request.Content = new StringContent(json, Encoding.UTF8, "application/json");
            }

            return Client.SendAsync(request);
        }

        /// <summary>A request as a browser sends it from a page of <paramref name="origin"/> (fetch with a JSON body).</summary>
        public Task<HttpResponseMessage> SendFromPageAsync(HttpMethod method, string path, string host, string origin, string? json = null)
        {
            var request = new HttpRequestMessage(method, path);
            request.Headers.Host = Expand(host);
            request.Headers.TryAddWithoutValidation("Origin", Expand(origin));
            request.Headers.TryAddWithoutValidation("Sec-Fetch-Site", "same-origin");
            if (json is not null)
            {
                request.Content = new StringContent(json, Encoding.UTF8, "application/json");
            }

            return Client.SendAsync(request);
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await _factory.DisposeAsync();
            _directory.Dispose();
        }
    }
}

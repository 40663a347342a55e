using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Dashboard;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterQueue.Tests.Dashboard;

/// <summary>The dashboard's files and its reads under /v1/dashboard, over HTTP against the real node.</summary>
public sealed partial class DashboardEndpointsTests
{
    private static readonly Dictionary<string, string?> Fresh = new() { ["ClusterQueue:Dashboard:TableMaxAge"] = "00:00:00" };

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    [Fact]
    public async Task Root_ServesThePage_WithAPolicyThatAllowsTheNodesOwnOriginOnly()
    {
        await using var node = new KestrelNode();
        using var anonymous = new HttpClient { BaseAddress = node.BaseAddress };
        using var response = await anonymous.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var policy = response.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("default-src 'self'", policy, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", policy, StringComparison.Ordinal);
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());

        // Every file the page names is served by the node itself, and no file names another host (no CDN).
        var html = await response.Content.ReadAsStringAsync();
        var referenced = AssetReference().Matches(html).Select(m => m.Groups[1].Value).ToList();
        Assert.Contains("/dashboard/app.js", referenced);
        Assert.Contains("/dashboard/style.css", referenced);
        foreach (var path in referenced)
        {
            using var asset = await anonymous.GetAsync(path);
            Assert.True(asset.IsSuccessStatusCode, $"{path} answered {(int)asset.StatusCode}");
        }

        var assets = node.Services.GetRequiredService<DashboardAssets>();
        Assert.Contains("overview.js", assets.Names);
        foreach (var name in assets.Names)
        {
            using var asset = await anonymous.GetAsync($"/dashboard/{name}");
            Assert.Equal(DashboardAssets.ContentSecurityPolicy, asset.Headers.GetValues("Content-Security-Policy").Single());
            // The SVG namespace is a name, never fetched.
            var text = (await asset.Content.ReadAsStringAsync()).Replace("http://www.w3.org/2000/svg", string.Empty, StringComparison.Ordinal);
            Assert.DoesNotMatch(OtherOrigin(), text);
        }
    }

    [Fact]
    public async Task Asset_UnchangedSinceTheLastLoad_AnswersNotModified()
    {
        await using var node = new KestrelNode();
        using var client = new HttpClient { BaseAddress = node.BaseAddress };
        using var first = await client.GetAsync("/dashboard/app.js");
        var etag = first.Headers.ETag;
        Assert.NotNull(etag);
        Assert.Equal("no-cache", first.Headers.CacheControl?.ToString());

        using var again = new HttpRequestMessage(HttpMethod.Get, "/dashboard/app.js");
        again.Headers.IfNoneMatch.Add(etag);
        using var second = await client.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, second.StatusCode);

        using var missing = await client.GetAsync("/dashboard/nothing.js");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task GroupsPage_SortsSearchesAndPagesOnTheNode()
    {
        await using var node = NodeHost.Start(Fresh);
        foreach (var (id, backlog) in new[] { ("alpha", 3), ("bravo", 1), ("charlie", 2), ("delta", 0) })
        {
            await node.DefineGroupAsync(id, new GroupDefinition { RatePerSecond = 1, Burst = 5, MaxConcurrency = 1, Target = new TargetDefinition { Url = "http://127.0.0.1:9/x" } });
            using var pause = await node.Client.PostAsync($"/v1/groups/{id}/pause", null);
            pause.EnsureSuccessStatusCode();
            await node.IngestManyAsync(id, backlog);
        }

        var page = await PageAsync(node, "?sort=backlog&order=desc");
        Assert.Equal(["alpha", "charlie", "bravo", "delta"], page.Groups.Select(g => g.Id));
        Assert.Equal([3L, 2L, 1L, 0L], page.Groups.Select(g => g.Backlog));
        Assert.All(page.Groups, g => Assert.True(g.Paused));
        Assert.All(page.Groups, g => Assert.Equal(5, g.Tokens));
        Assert.Equal(4, page.Node.Groups);
        Assert.Equal(6, page.Node.Backlog);
        Assert.Equal(4, page.Node.PausedGroups);
        Assert.Null(page.Node.Members);

        var searched = await PageAsync(node, "?q=ARL");
        Assert.Equal(["charlie"], searched.Groups.Select(g => g.Id));
        Assert.Equal(1, searched.Matched);
        Assert.Equal(4, searched.Total);

        var second = await PageAsync(node, "?limit=2&offset=2");
        Assert.Equal(["charlie", "delta"], second.Groups.Select(g => g.Id));
        Assert.Equal(4, second.Matched);
    }

    [Fact]
    public async Task MessageBody_IsShownAsTextOrHex_UpToThePreviewSize()
    {
        await using var node = NodeHost.Start(new Dictionary<string, string?> { ["ClusterQueue:Dashboard:MaxBodyPreviewBytes"] = "8" });
        await node.DefineGroupAsync("held", new GroupDefinition { RatePerSecond = 1, Burst = 1, MaxConcurrency = 1, Target = new TargetDefinition { Url = "http://127.0.0.1:9/x" } });
        using (var pause = await node.Client.PostAsync("/v1/groups/held/pause", null))
        {
            pause.EnsureSuccessStatusCode();
        }

        var text = await node.IngestOkAsync("held", "{\"greeting\":\"hello\"}");
        var preview = (await node.Client.GetFromJsonAsync<BodyResponse>($"/v1/dashboard/messages/{text}/body", Json))!;
        Assert.Equal("{\"greeti", preview.Text);
        Assert.Null(preview.Hex);
        Assert.True(preview.Truncated);
        Assert.True(preview.Kept);
        Assert.Equal(20, preview.SizeBytes);
        Assert.Equal(8, preview.ShownBytes);

        using var binary = new ByteArrayContent([0x00, 0x01, 0xff]);
        binary.Headers.ContentType = new("application/octet-stream");
        using var sent = await node.Client.PostAsync("/hooks/held", binary);
        var id = (await sent.Content.ReadFromJsonAsync<IngestAccepted>())!.MessageId;
        var hex = (await node.Client.GetFromJsonAsync<BodyResponse>($"/v1/dashboard/messages/{id}/body", Json))!;
        Assert.Null(hex.Text);
        Assert.Equal("0001ff", hex.Hex);
        Assert.False(hex.Truncated);

        using var missing = await node.Client.GetAsync("/v1/dashboard/messages/nope/body");
        await Problems.ReadAsync(missing, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task History_KeepsPointsForBusyGroupsOnly()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start(new Dictionary<string, string?> { ["ClusterQueue:Dashboard:SampleInterval"] = "00:01:00" });
        await node.DefineGroupAsync("busy", GroupDefinitions.Forwarding(downstream, "/busy"));
        await node.DefineGroupAsync("idle", GroupDefinitions.Forwarding(downstream, "/idle"));
        var history = node.Get<GroupHistory>();
        await history.SampleAsync(CancellationToken.None);

        await node.IngestManyAsync("busy", 5);
        await Eventually.ReadAsync(() => node.StatsAsync("busy"), stats => stats.Delivered == 5, "five deliveries");
        await history.SampleAsync(CancellationToken.None);

        var busy = (await node.Client.GetFromJsonAsync<GroupHistoryResponse>("/v1/dashboard/groups/busy/history", Json))!;
        var point = Assert.Single(busy.Points);
        Assert.True(point.DeliveredPerSecond > 0, $"delivered/s {point.DeliveredPerSecond}");
        Assert.Equal(1000, point.RatePerSecond);
        Assert.Equal(100, point.MaxConcurrency);
        Assert.Equal(60, busy.IntervalSeconds);
        var idle = (await node.Client.GetFromJsonAsync<GroupHistoryResponse>("/v1/dashboard/groups/idle/history", Json))!;
        Assert.Empty(idle.Points);
        Assert.Equal(1, history.Tracked);

        using var unknown = await node.Client.GetAsync("/v1/dashboard/groups/nope/history");
        await Problems.ReadAsync(unknown, HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("?sort=colour", "sort")]
    [InlineData("?order=up", "order")]
    [InlineData("?offset=-1", "offset")]
    [InlineData("?offset=abc", "offset")]
    [InlineData("?limit=501", "limit")]
    public async Task GroupsPage_WithABadQueryValue_Answers400NamingIt(string query, string field)
    {
        await using var node = NodeHost.Start();
        using var response = await node.Client.GetAsync($"/v1/dashboard/groups{query}");
        await Problems.AssertValidationErrorAsync(response, field);
    }

    [Fact]
    public async Task DashboardReads_AreGuardedLikeTheRestOfTheAdminApi()
    {
        await using var node = new KestrelNode();
        using var anonymous = new HttpClient { BaseAddress = node.BaseAddress };
        foreach (var path in new[] { "/v1/dashboard/groups", "/v1/dashboard/groups/x/history", "/v1/dashboard/messages/x/body" })
        {
            using var response = await anonymous.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }
    }

    [Fact]
    public async Task OpenApiDocument_DescribesTheDashboardReads()
    {
        await using var node = NodeHost.Start();
        using var document = JsonDocument.Parse(await node.Client.GetStringAsync("/openapi/v1.json"));
        var paths = document.RootElement.GetProperty("paths");
        Assert.True(paths.TryGetProperty("/v1/dashboard/groups", out var groups));
        Assert.Contains("sort", groups.GetProperty("get").GetProperty("description").GetString(), StringComparison.Ordinal);
        Assert.True(paths.TryGetProperty("/v1/dashboard/groups/{id}/history", out _));
        Assert.True(paths.TryGetProperty("/v1/dashboard/messages/{messageId}/body", out _));
        Assert.False(paths.TryGetProperty("/", out _));
    }

    internal static async Task<GroupPage> PageAsync(NodeHost node, string query) =>
        (await node.Client.GetFromJsonAsync<GroupPage>($"/v1/dashboard/groups{query}", Json))!;

    [GeneratedRegex("(?:src|href)=\"(/dashboard/[^\"]+)\"")]
    private static partial Regex AssetReference();

    [GeneratedRegex(@"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", RegexOptions.IgnoreCase)]
    private static partial Regex OtherOrigin();
}

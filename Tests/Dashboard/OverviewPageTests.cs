using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;
using Xunit.Abstractions;

namespace ClusterQueue.Tests.Dashboard;

/// <summary>The overview in a real Chromium against a real node on a loopback port, with real groups and traffic.</summary>
public sealed class OverviewPageTests(BrowserFixture fixture, ITestOutputHelper output) : IClassFixture<BrowserFixture>
{
    private const string Why = "the dashboard's browser tests drive headless Chromium";

    private Browser Browser => fixture.Browser;

    [CommandFact("chromium", Why)]
    public async Task Overview_ListsGroupsAgainstTheirLimits_AndTheirNumbersChangeLive()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromSeconds(1));
        await using var node = new KestrelNode();
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders", rate: 4, burst: 2, concurrency: 3));
        await node.DefineGroupAsync("payments", GroupDefinitions.Forwarding(downstream, "/payments", rate: 250, burst: 500, concurrency: 7));
        await node.DefineGroupAsync("invoices", GroupDefinitions.Forwarding(downstream, "/invoices", rate: 20, burst: 40, concurrency: 4));
        using (var pause = await node.Client.PostAsync("/v1/groups/invoices/pause", null))
        {
            pause.EnsureSuccessStatusCode();
        }

        for (var i = 0; i < 5; i++)
        {
            using var held = await node.Client.PostAsync("/hooks/invoices", new StringContent("{}", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Accepted, held.StatusCode);
        }

        await OpenWithTokenAsync(node);
        await Browser.WaitTextAsync("tr[data-group='orders'] td[data-col='rate']", "4");
        Assert.Equal("2", await Browser.TextAsync("tr[data-group='orders'] td[data-col='burst']"));
        Assert.Equal("3", await Browser.TextAsync("tr[data-group='orders'] td[data-col='concurrency']"));
        Assert.Equal("250", await Browser.TextAsync("tr[data-group='payments'] td[data-col='rate']"));
        Assert.Equal("500", await Browser.TextAsync("tr[data-group='payments'] td[data-col='tokens']"));
        Assert.Equal("5", await Browser.TextAsync("#total-backlog .value"));

        // Traffic while the page stays open: calls in flight reach the concurrency limit (each takes a second) with a
        // backlog behind them, which then drains, with no reload.
        await Browser.EvaluateAsync("window.notReloaded = true");
        for (var i = 0; i < 12; i++)
        {
            using var response = await node.Client.PostAsync("/hooks/orders", new StringContent("{}", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        await Browser.WaitTextAsync("tr[data-group='orders'] td[data-col='inFlight']", "3");
        var backlog = int.Parse(await Browser.TextAsync("tr[data-group='orders'] td[data-col='backlog']"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(backlog, 1, 11);
        Assert.Equal("5", await Browser.TextAsync("tr[data-group='invoices'] td[data-col='backlog']"));
        Assert.Equal("paused", await Browser.TextAsync("tr[data-group='invoices'] td[data-col='paused']"));
        if (BrowserFixture.ScreenshotPath("dashboard-overview.png") is { } path)
        {
            await Browser.ScreenshotAsync(path);
        }

        await Browser.WaitTextAsync("tr[data-group='orders'] td[data-col='backlog']", "0", TimeSpan.FromSeconds(30));
        Assert.Equal("5", await Browser.TextAsync("#total-backlog .value"));
        Assert.True((await Browser.EvaluateAsync("window.notReloaded === true")).GetBoolean(), "the page reloaded instead of updating itself");
        Assert.Equal("live", await Browser.AttributeAsync("#status", "data-state"));

        await AssertOnlyOwnOriginAsync(node);
    }

    [CommandFact("chromium", Why)]
    public async Task Overview_WithTenThousandGroups_LoadsQuickly_SearchesAndPagesOnTheServer()
    {
        await using var node = new KestrelNode();
        var defining = Stopwatch.StartNew();
        await DefineManyAsync(node, 10_000);
        output.WriteLine($"defined 10,000 groups in {defining.Elapsed.TotalSeconds:F1} s");

        await OpenWithTokenAsync(node);
        await Browser.WaitTextAsync("#range", "1–50 of 10,000");

        // Load to first table in a second fresh tab, the token already given: navigation start to the table drawn.
        await Browser.GotoAsync(new Uri("about:blank"));
        await Browser.GotoAsync(new Uri(node.BaseAddress, "/#/?sort=backlog&order=desc"));
        await Browser.WaitTextAsync("#range", "1–50 of 10,000");
        var firstTable = (await Browser.EvaluateAsync("performance.getEntriesByName('cq-first-table')[0].startTime")).GetDouble();
        var loaded = (await Browser.EvaluateAsync("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")).GetDouble();
        output.WriteLine($"10,000 groups: first table drawn {firstTable:F0} ms after navigation start (DOMContentLoaded at {loaded:F0} ms)");
        Assert.InRange(firstTable, 1, 5000);
        Assert.Equal(50, await Browser.CountAsync("#groups tbody tr[data-group]"));

        // Search runs on the node: 'g0999' matches g09990..g09999 only.
        await Browser.FillAsync("#search", "G0999");
        await Browser.WaitTextAsync("#range", "1–10 of 10 (of 10,000 groups)");
        var found = await Browser.TextsAsync("#groups tbody td[data-col='id']");
        Assert.Equal(Enumerable.Range(9990, 10).Select(i => $"g{i:D5}"), found.Order());

        // Paging and sorting over all 10,000.
        await Browser.FillAsync("#search", string.Empty);
        await Browser.ClickAsync("th[data-sort='id'] button");
        await Browser.WaitTextAsync("#range", "1–50 of 10,000");
        await Browser.WaitTextAsync("#groups tbody tr:first-child td[data-col='id']", "g00000");
        await Browser.ClickAsync("#next");
        await Browser.WaitTextAsync("#range", "51–100 of 10,000");
        Assert.Equal("g00050", await Browser.TextAsync("#groups tbody tr:first-child td[data-col='id']"));
        await Browser.ClickAsync("th[data-sort='id'] button");
        await Browser.WaitTextAsync("#groups tbody tr:first-child td[data-col='id']", "g09999");
        await Browser.WaitTextAsync("#range", "1–50 of 10,000");
        await Browser.ClickAsync("th[data-sort='rate'] button");
        await Browser.WaitTextAsync("#groups tbody tr:first-child td[data-col='id']", "g09999");
        Assert.Equal("10,000", await Browser.TextAsync("#groups tbody tr:first-child td[data-col='rate']"));

        await AssertOnlyOwnOriginAsync(node);
    }

    [CommandFact("chromium", Why)]
    public async Task TokenPrompt_AsksOnce_RefusesAWrongToken_AndKeepsTheRightOneForTheTabOnly()
    {
        await using var node = new KestrelNode();
        await node.DefineGroupAsync("orders", new GroupDefinition { RatePerSecond = 1, Burst = 1, MaxConcurrency = 1, Target = new TargetDefinition { Url = "http://127.0.0.1:9/x" } });

        await Browser.OpenAsync();
        await Browser.GotoAsync(node.BaseAddress);
        await Browser.WaitVisibleAsync("#token-form");
        Assert.Equal(0, await Browser.CountAsync("tr[data-group]"));

        await Browser.FillAsync("#token-form input", "not-the-token");
        await Browser.PressAsync("#token-form input", "Enter");
        await Browser.WaitTextAsync("#token-form .token-error", "refused");

        await Browser.FillAsync("#token-form input", NodeHost.AdminToken);
        await Browser.PressAsync("#token-form input", "Enter");
        await Browser.WaitTextAsync("tr[data-group='orders']", "orders");

        // Kept for the tab's session: a reload does not ask again. Never in a cookie or the URL.
        await Browser.GotoAsync(new Uri("about:blank"));
        await Browser.GotoAsync(new Uri(node.BaseAddress, "/#/?q=ord"));
        await Browser.WaitTextAsync("tr[data-group='orders']", "orders");
        Assert.True(await Browser.CountAsync("#token-form:visible") == 0, "the token was asked for again after a reload");
        Assert.Equal(NodeHost.AdminToken, (await Browser.EvaluateAsync("sessionStorage.getItem('clusterqueue.adminToken')")).GetString());
        Assert.Equal(string.Empty, (await Browser.EvaluateAsync("document.cookie")).GetString());
        Assert.DoesNotContain(await Browser.RequestsAsync(), url => url.Contains(NodeHost.AdminToken, StringComparison.Ordinal));

        // Another tab's session starts without it.
        await Browser.OpenAsync();
        await Browser.GotoAsync(node.BaseAddress);
        await Browser.WaitVisibleAsync("#token-form");
    }

    [CommandFact("chromium", Why)]
    public async Task Header_WhenTheNodeGoesAway_SaysTheDataIsFromAnUnreachableNode()
    {
        var node = new KestrelNode(new Dictionary<string, string?> { ["ClusterQueue:AdminToken"] = string.Empty });
        try
        {
            await node.DefineGroupAsync("orders", new GroupDefinition { RatePerSecond = 1, Burst = 1, MaxConcurrency = 1, Target = new TargetDefinition { Url = "http://127.0.0.1:9/x" } });
            await Browser.OpenAsync();
            await Browser.GotoAsync(node.BaseAddress);
            await Browser.WaitTextAsync("tr[data-group='orders']", "orders");
            await Browser.WaitTextAsync("#status", "live");
        }
        finally
        {
            await node.DisposeAsync();
        }

        await Browser.WaitTextAsync("#status[data-state='unreachable']", "node unreachable");
        Assert.Equal("orders", await Browser.TextAsync("tr[data-group='orders'] td[data-col='id']"));
    }

    /// <summary>A fresh tab on the node, the admin token given at the prompt.</summary>
    private async Task OpenWithTokenAsync(KestrelNode node)
    {
        await Browser.OpenAsync();
        await Browser.GotoAsync(node.BaseAddress);
        await Browser.WaitVisibleAsync("#token-form");
        await Browser.FillAsync("#token-form input", NodeHost.AdminToken);
        await Browser.PressAsync("#token-form input", "Enter");
        await Browser.WaitVisibleAsync("#groups");
    }

    private async Task AssertOnlyOwnOriginAsync(KestrelNode node)
    {
        var origin = node.BaseAddress.GetLeftPart(UriPartial.Authority);
        var requests = await Browser.RequestsAsync();
        Assert.NotEmpty(requests);
        Assert.All(requests, url => Assert.StartsWith(origin + "/", url, StringComparison.Ordinal));
        Assert.Empty(await Browser.ErrorsAsync());
    }

    /// <summary>g00000 … g{n-1}, group i at rate i+1 (so rate sorts them like their ids), defined through /v1 a few at a time.</summary>
    internal static async Task DefineManyAsync(KestrelNode node, int count)
    {
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, cancellationToken) =>
        {
            var definition = new GroupDefinition { RatePerSecond = i + 1, Burst = 10, MaxConcurrency = 2, Target = new TargetDefinition { Url = "http://127.0.0.1:9/none" } };
            using var response = await node.Client.PutAsJsonAsync($"/v1/groups/g{i:D5}", definition, cancellationToken);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        });
    }
}

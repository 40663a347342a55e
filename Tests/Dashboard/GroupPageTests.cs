using System.Net;
using System.Net.Http.Json;
using System.Text;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Dashboard;

/// <summary>
/// The group, dead-letter and message pages in a real Chromium. The node runs without an admin token (loopback mode),
/// so every change the page makes passes the same checks a page of another origin fails: loopback Host, own Origin.
/// </summary>
public sealed class GroupPageTests(BrowserFixture fixture) : IClassFixture<BrowserFixture>
{
    private const string Why = "the dashboard's browser tests drive headless Chromium";

    private static readonly Dictionary<string, string?> Loopback = new()
    {
        ["ClusterQueue:AdminToken"] = string.Empty,
        ["ClusterQueue:Dashboard:SampleInterval"] = "00:00:01",
    };

    private Browser Browser => fixture.Browser;

    [CommandFact("chromium", Why)]
    public async Task GroupPage_EditingTheRate_ShowsTheNewRate_AndABadValueShowsTheFieldError()
    {
        await using var node = new KestrelNode(Loopback);
        await node.DefineGroupAsync("orders", Held());
        await OpenAsync(node, "#/groups/orders");
        await Browser.WaitVisibleAsync("[data-field='ratePerSecond']");
        Assert.Equal(0, await Browser.CountAsync("#token-form:visible"));

        await Browser.FillAsync("[data-field='ratePerSecond']", "12.5");
        await Browser.ClickAsync("#save");
        await Browser.WaitTextAsync("#notice", "Saved.");
        await Browser.WaitTextAsync("[data-stat='rate']", "12.5 /s");
        Assert.Equal(12.5, (await GroupAsync(node, "orders")).RatePerSecond);

        await Browser.FillAsync("[data-field='ratePerSecond']", "-3");
        await Browser.FillAsync("[data-field='burst']", "lots");
        await Browser.ClickAsync("#save");
        await Browser.WaitTextAsync("#notice", "Not saved");
        Assert.Contains("burst", await Browser.TextAsync("[data-error-for='burst']"), StringComparison.Ordinal);
        Assert.Equal("true", await Browser.AttributeAsync("[data-field='burst']", "aria-invalid"));

        // One field at a time, as the API validates the body's form before its values.
        await Browser.FillAsync("[data-field='burst']", "1");
        await Browser.ClickAsync("#save");
        await Browser.WaitTextAsync("[data-error-for='ratePerSecond']", "ratePerSecond");
        Assert.Equal(string.Empty, await Browser.TextAsync("[data-error-for='burst']"));
        Assert.Equal(12.5, (await GroupAsync(node, "orders")).RatePerSecond);
        Assert.Empty(await Browser.ErrorsAsync());
    }

    [CommandFact("chromium", Why)]
    public async Task GroupPage_PausesResumesAndPurges_AndChartsTheLastMinutes()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromMilliseconds(400));
        await using var node = new KestrelNode(Loopback);
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders", rate: 5, burst: 2, concurrency: 2));
        await IngestAsync(node, "orders", 40);

        await OpenAsync(node, "#/groups/orders");
        await Browser.WaitTextAsync("#group-state", "running");

        // Charts fill from the node's one-second samples: delivered against the rate, in flight against the limit.
        var screenshot = BrowserFixture.ScreenshotPath("dashboard-group.png");
        await Browser.WaitCountAsync("#chart-delivered polyline", 3);
        await Eventually.ReadAsync(
            () => Browser.AttributeAsync("#chart-inflight polyline[data-series='in flight']", "points"),
            points => points?.Split(' ').Length >= (screenshot is null ? 3 : 8),
            "points of in-flight history",
            TimeSpan.FromSeconds(20));
        if (screenshot is not null)
        {
            await Browser.ScreenshotAsync(screenshot, fullPage: true);
        }

        await Browser.ClickAsync("#pause");
        await Browser.WaitTextAsync("#group-state", "paused");
        Assert.True((await GroupAsync(node, "orders")).Paused);

        // Purge asks for the group id first, as the API's confirm does.
        Assert.Equal("true", (await Browser.EvaluateAsync("document.getElementById('purge').disabled")).GetRawText());
        await Browser.FillAsync("#purge-confirm", "orders");
        await Browser.ClickAsync("#purge");
        await Browser.WaitTextAsync("#notice", "Purged");
        await Browser.WaitTextAsync("[data-stat='backlog']", "0");
        Assert.Equal(0, (await node.StatsAsync("orders")).Queued);

        await Browser.ClickAsync("#resume");
        await Browser.WaitTextAsync("#group-state", "running");
        Assert.False((await GroupAsync(node, "orders")).Paused);
        Assert.Empty(await Browser.ErrorsAsync());
    }

    [CommandFact("chromium", Why)]
    public async Task DeadLetters_ShowEachAttemptsHistoryAndBody_AndRedriveAllEmptiesTheList()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(500, Body: "upstream broke");
        await using var node = new KestrelNode(Loopback);
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders") with
        {
            MaxAttempts = 2,
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.05, MaxSeconds = 0.1 },
        });
        var ids = await IngestAsync(node, "orders", 3);
        await Eventually.ReadAsync(() => node.StatsAsync("orders"), stats => stats.Dead == 3, "three dead letters", TimeSpan.FromSeconds(20));

        await OpenAsync(node, "#/groups/orders/dead-letters");
        await Browser.WaitCountAsync("#dead-letters tbody tr[data-message]", 3);
        await Browser.ClickAsync($"button[data-toggle='{ids[0]}']");
        var history = $"tr[data-history-for='{ids[0]}']";
        await Browser.WaitVisibleAsync(history);
        Assert.Equal(["500", "500"], await Browser.TextsAsync($"{history} td[data-col='status']"));
        await Browser.WaitTextAsync($"{history} pre[data-body='{ids[0]}']", "{\"n\":0}");

        downstream.Reply = _ => DownstreamReply.Ok;
        await Browser.ClickAsync("#redrive-all");
        await Browser.WaitTextAsync("#notice", "Redriven 3.");
        await Browser.WaitTextAsync("#summary", "No dead letters.");
        Assert.Equal("Redriven 3 of 3", await Browser.TextAsync("#progress-text"));
        await Eventually.ReadAsync(() => node.StatsAsync("orders"), stats => stats.Delivered == 3 && stats.Dead == 0, "the redriven messages delivered", TimeSpan.FromSeconds(20));
        Assert.Empty(await Browser.ErrorsAsync());
    }

    [CommandFact("chromium", Why)]
    public async Task MessageLookup_ShowsStatusAttemptsAndResult()
    {
        await using var downstream = await Downstream.StartAsync();
        var calls = 0;
        downstream.Reply = _ => Interlocked.Increment(ref calls) == 1
            ? new DownstreamReply(503, RetryAfter: "0")
            : new DownstreamReply(200, Body: "{\"receipt\":\"r-42\"}", ContentType: "application/json");
        await using var node = new KestrelNode(Loopback);
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders"));
        using var sent = await node.Client.PostAsync("/hooks/orders?wait=20", new StringContent("{\"order\":42}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        var id = sent.Headers.GetValues("ClusterQueue-Message-Id").Single();

        await OpenAsync(node, "#/");
        await Browser.FillAsync("#lookup input", id);
        await Browser.PressAsync("#lookup input", "Enter");
        await Browser.WaitTextAsync("[data-field='state']", "delivered");
        Assert.Equal("orders", await Browser.TextAsync("[data-field='group']"));
        await Browser.WaitTextAsync("#result", "r-42");
        await Browser.WaitTextAsync("table.attempts td[data-col='status']", "503");
        await Browser.WaitTextAsync($"[data-body-note='{id}']", "no longer kept");
        Assert.Empty(await Browser.ErrorsAsync());
    }

    private async Task OpenAsync(KestrelNode node, string hash)
    {
        await Browser.OpenAsync();
        await Browser.GotoAsync(new Uri(node.BaseAddress, "/" + hash));
    }

    private static GroupDefinition Held() => new()
    {
        RatePerSecond = 1,
        Burst = 1,
        MaxConcurrency = 1,
        Target = new TargetDefinition { Url = "http://127.0.0.1:9/unreachable" },
    };

    private static async Task<GroupResponse> GroupAsync(KestrelNode node, string id) =>
        (await node.Client.GetFromJsonAsync<GroupResponse>($"/v1/groups/{id}"))!;

    private static async Task<List<string>> IngestAsync(KestrelNode node, string group, int count)
    {
        var ids = new List<string>();
        for (var i = 0; i < count; i++)
        {
            using var response = await node.Client.PostAsync($"/hooks/{group}", new StringContent($"{{\"n\":{i}}}", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            ids.Add((await response.Content.ReadFromJsonAsync<IngestAccepted>())!.MessageId);
        }

        return ids;
    }
}

using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Groups;
using ClusterQueue.Tests.Support;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterQueue.Tests.Groups;

public sealed class GroupEndpointsTests
{
    // Definitions here are only stored, never delivered to, so the target needs no server behind it.
    private const string Target = "http://127.0.0.1:9/hook";
    private const string ValidJson = """{"ratePerSecond":5,"burst":10,"maxConcurrency":2,"target":{"url":"http://127.0.0.1:9/hook"}}""";
    private const string GitHubSecret = "gh-secret-that-must-never-leak-7f3a";

    private static GroupDefinition Minimal(double rate = 5, int burst = 10, int concurrency = 2) => new()
    {
        RatePerSecond = rate,
        Burst = burst,
        MaxConcurrency = concurrency,
        Target = new TargetDefinition { Url = Target },
    };

    [Fact]
    public async Task Put_NewGroup_Returns201WithLocationAndResolvedDefaults()
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.PutAsJsonAsync("/v1/groups/orders", Minimal(rate: 0.5, burst: 3, concurrency: 4));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("/v1/groups/orders", response.Headers.Location?.OriginalString);
        var group = (await response.Content.ReadFromJsonAsync<GroupResponse>())!;
        Assert.Equal("orders", group.Id);
        Assert.Equal(0.5, group.RatePerSecond);
        Assert.Equal(3, group.Burst);
        Assert.Equal(4, group.MaxConcurrency);
        Assert.Equal(Target, group.Target.Url);
        Assert.Equal(30, group.HandlerTimeoutSeconds);
        Assert.Equal(5, group.MaxAttempts);
        Assert.Equal(1, group.RetryBackoff.InitialSeconds);
        Assert.Equal(300, group.RetryBackoff.MaxSeconds);
        Assert.Equal(1_048_576, group.MaxPayloadBytes);
        Assert.Equal(100, group.MaxSteps);
        Assert.Null(group.Verification);
        Assert.Equal(group.CreatedAt, group.UpdatedAt);
    }

    [Fact]
    public async Task Put_ExistingGroup_Returns200ReplacesDefinitionAndKeepsCreatedAt()
    {
        await using var node = NodeHost.Start();
        var first = await node.DefineGroupAsync("orders", Minimal(rate: 5));

        using var response = await node.Client.PutAsJsonAsync("/v1/groups/orders", Minimal(rate: 7) with { MaxAttempts = 9 });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var second = (await response.Content.ReadFromJsonAsync<GroupResponse>())!;
        Assert.Equal(7, second.RatePerSecond);
        Assert.Equal(9, second.MaxAttempts);
        Assert.Equal(first.CreatedAt, second.CreatedAt);
        Assert.True(second.UpdatedAt >= first.UpdatedAt);
        var read = await node.Client.GetFromJsonAsync<GroupResponse>("/v1/groups/orders");
        Assert.Equal(7, read!.RatePerSecond);
        Assert.Equal(first.CreatedAt, read.CreatedAt);
    }

    [Fact]
    public async Task Get_DefinedGroup_ReturnsItsDefinition()
    {
        await using var node = NodeHost.Start();
        var defined = await node.DefineGroupAsync("orders", Minimal() with
        {
            HandlerTimeoutSeconds = 12.5,
            MaxAttempts = 3,
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 2, MaxSeconds = 60 },
            MaxPayloadBytes = 4096,
        });

        using var response = await node.Client.GetAsync("/v1/groups/orders");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var group = (await response.Content.ReadFromJsonAsync<GroupResponse>())!;
        Assert.Equal(12.5, group.HandlerTimeoutSeconds);
        Assert.Equal(3, group.MaxAttempts);
        Assert.Equal(new RetryBackoffResponse(2, 60), group.RetryBackoff);
        Assert.Equal(4096, group.MaxPayloadBytes);
        Assert.Equal(defined.CreatedAt, group.CreatedAt);
    }

    [Fact]
    public async Task Get_UnknownGroup_Returns404Problem()
    {
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", Minimal());

        using var response = await node.Client.GetAsync("/v1/groups/invoices");

        var problem = await Problems.ReadAsync(response, HttpStatusCode.NotFound);
        Assert.Equal(404, problem.GetProperty("status").GetInt32());
        Assert.Contains("invoices", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task List_WithLimit_PagesInIdOrderUntilNextAfterIsNull()
    {
        await using var node = NodeHost.Start();
        foreach (var id in new[] { "e", "c", "a", "d", "b" })
        {
            await node.DefineGroupAsync(id, Minimal());
        }

        var first = (await node.Client.GetFromJsonAsync<GroupList>("/v1/groups?limit=2"))!;
        var second = (await node.Client.GetFromJsonAsync<GroupList>($"/v1/groups?limit=2&after={first.NextAfter}"))!;
        var third = (await node.Client.GetFromJsonAsync<GroupList>($"/v1/groups?limit=2&after={second.NextAfter}"))!;
        var all = (await node.Client.GetFromJsonAsync<GroupList>("/v1/groups"))!;

        Assert.Equal(["a", "b"], first.Groups.Select(g => g.Id));
        Assert.Equal("b", first.NextAfter);
        Assert.Equal(["c", "d"], second.Groups.Select(g => g.Id));
        Assert.Equal("d", second.NextAfter);
        Assert.Equal(["e"], third.Groups.Select(g => g.Id));
        Assert.Null(third.NextAfter);
        Assert.Equal(["a", "b", "c", "d", "e"], all.Groups.Select(g => g.Id));
        Assert.Null(all.NextAfter);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("1001")]
    public async Task List_WithLimitOutOfRange_Returns400NamingLimit(string limit)
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.GetAsync($"/v1/groups?limit={limit}");

        await Problems.AssertValidationErrorAsync(response, "limit");
    }

    [Theory]
    [InlineData("ten")]
    [InlineData("abc")]
    [InlineData("1.5")]
    [InlineData("99999999999")]
    [InlineData("true")]
    public async Task List_WithNonNumericLimit_Returns400NamingLimit(string limit)
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.GetAsync($"/v1/groups?limit={limit}");

        await Problems.AssertValidationErrorAsync(response, "limit");
    }

    [Fact]
    public async Task Patch_SomeFields_ChangesOnlyThoseAndIsVisibleInGet()
    {
        await using var node = NodeHost.Start();
        var before = await node.DefineGroupAsync("orders", Minimal(rate: 5, burst: 10, concurrency: 2) with
        {
            HandlerTimeoutSeconds = 12,
            MaxAttempts = 7,
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 2, MaxSeconds = 60 },
            Verification = new VerificationDefinition { Scheme = "github", Secret = GitHubSecret },
            MaxPayloadBytes = 2048,
        });

        using var response = await node.Client.PatchAsync("/v1/groups/orders", Json("""{"ratePerSecond":2.5,"retryBackoff":{"maxSeconds":120}}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var patched = (await response.Content.ReadFromJsonAsync<GroupResponse>())!;
        var read = (await node.Client.GetFromJsonAsync<GroupResponse>("/v1/groups/orders"))!;
        foreach (var group in new[] { patched, read })
        {
            Assert.Equal(2.5, group.RatePerSecond);
            Assert.Equal(new RetryBackoffResponse(2, 120), group.RetryBackoff);
            Assert.Equal(10, group.Burst);
            Assert.Equal(2, group.MaxConcurrency);
            Assert.Equal(Target, group.Target.Url);
            Assert.Equal(12, group.HandlerTimeoutSeconds);
            Assert.Equal(7, group.MaxAttempts);
            Assert.Equal(new VerificationResponse("github", true), group.Verification);
            Assert.Equal(2048, group.MaxPayloadBytes);
            Assert.Equal(before.CreatedAt, group.CreatedAt);
        }
    }

    [Fact]
    public async Task Patch_RatePerSecond_AppliesLiveToMessagesAlreadyQueued()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();

        // One token refilled every 100 s: after the first delivery the rest wait far longer than this test runs.
        await node.DefineGroupAsync("slow", GroupDefinitions.Forwarding(downstream, "/slow", rate: 0.01, burst: 1, concurrency: 1));
        await node.IngestOkAsync("slow", """{"n":0}""");
        await downstream.WaitUntilAsync(d => d.CallsTo("/slow").Count == 1, TimeSpan.FromSeconds(10), "the first message spends the token");
        for (var i = 1; i <= 3; i++)
        {
            await node.IngestOkAsync("slow", $$"""{"n":{{i}}}""");
        }

        await WaitForStatsAsync(node, "slow", s => s.Queued == 3, "three messages queued");

        using var response = await node.Client.PatchAsync("/v1/groups/slow", Json("""{"ratePerSecond":100,"burst":10}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await downstream.WaitUntilAsync(d => d.CallsTo("/slow").Count == 4, TimeSpan.FromSeconds(10), "the queued messages are delivered at the new rate");
        Assert.Equal(100, (await node.StatsAsync("slow")).RatePerSecond);
    }

    [Fact]
    public async Task ConcurrentPatches_OfOneGroupTakeTurns_AndOfManyGroupsAllLand()
    {
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", Minimal());
        string[] others = [.. Enumerable.Range(0, 40).Select(i => $"g{i}")];
        foreach (var id in others)
        {
            await node.DefineGroupAsync(id, Minimal());
        }

        // Each PATCH of "orders" changes a different field: one that read the definition before another's commit would
        // put the old value of that field back.
        string[] fields = ["""{"ratePerSecond":7}""", """{"burst":3}""", """{"maxConcurrency":9}""", """{"maxAttempts":4}""", """{"handlerTimeoutSeconds":12}""", """{"maxPayloadBytes":4096}"""];
        var patches = fields.Select(f => node.Client.PatchAsync("/v1/groups/orders", Json(f)))
            .Concat(others.Select(id => node.Client.PatchAsync($"/v1/groups/{id}", Json("""{"ratePerSecond":11}"""))))
            .ToList();
        foreach (var response in await Task.WhenAll(patches))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            response.Dispose();
        }

        var orders = (await node.Client.GetFromJsonAsync<GroupResponse>("/v1/groups/orders"))!;
        Assert.Equal((7.0, 3, 9, 4, 12.0, 4096L), (orders.RatePerSecond, orders.Burst, orders.MaxConcurrency, orders.MaxAttempts, orders.HandlerTimeoutSeconds, (long)orders.MaxPayloadBytes));
        foreach (var id in others)
        {
            Assert.Equal(11, (await node.Client.GetFromJsonAsync<GroupResponse>($"/v1/groups/{id}"))!.RatePerSecond);
        }
    }

    [Fact]
    public async Task Patch_UnknownGroup_Returns404ProblemAndCreatesNothing()
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.PatchAsync("/v1/groups/orders", Json("""{"ratePerSecond":2}"""));

        await Problems.ReadAsync(response, HttpStatusCode.NotFound);
        using var get = await node.Client.GetAsync("/v1/groups/orders");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Theory]
    [InlineData("burst", """{"burst":0}""")]
    [InlineData("ratePerSecond", """{"ratePerSecond":-1}""")]
    [InlineData("maxConcurrency", """{"maxConcurrency":"3"}""")]
    [InlineData("target.url", """{"target":{"url":"ftp://127.0.0.1/x"}}""")]
    [InlineData("retryBackoff.maxSeconds", """{"retryBackoff":{"maxSeconds":0.5}}""")]
    [InlineData("verification.secret", """{"verification":{"scheme":"github"}}""")]
    [InlineData("maxPayloadBytes", """{"maxPayloadBytes":0}""")]
    [InlineData("maxSteps", """{"maxSteps":1001}""")]
    [InlineData("burst", """{"burst":4,"burst":400}""")]
    [InlineData("target.url", """{"target":{"url":"http://user:pass@127.0.0.1:9/other"}}""")]
    [InlineData("handlerTimeoutSeconds", """{"handlerTimeoutSeconds":1e-9}""")]
    [InlineData("retryBackoff.initialSeconds", """{"retryBackoff":{"initialSeconds":1e-9}}""")]
    public async Task Patch_WithInvalidValue_Returns400NamingTheFieldAndLeavesGroupUnchanged(string field, string body)
    {
        await using var node = NodeHost.Start();
        var before = await node.DefineGroupAsync("orders", Minimal() with
        {
            Verification = new VerificationDefinition { Scheme = "hmac-sha256", Secret = "plain-secret" },
        });

        using var response = await node.Client.PatchAsync("/v1/groups/orders", Json(body));

        await Problems.AssertValidationErrorAsync(response, field);
        var after = (await node.Client.GetFromJsonAsync<GroupResponse>("/v1/groups/orders"))!;
        Assert.Equal(before, after);
    }

    [Fact]
    public async Task Delete_DefinedGroup_Returns204ThenGetAndDeleteAnswer404()
    {
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", Minimal());
        await node.DefineGroupAsync("invoices", Minimal());

        using var delete = await node.Client.DeleteAsync("/v1/groups/orders");
        using var get = await node.Client.GetAsync("/v1/groups/orders");
        using var again = await node.Client.DeleteAsync("/v1/groups/orders");

        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        await Problems.ReadAsync(get, HttpStatusCode.NotFound);
        await Problems.ReadAsync(again, HttpStatusCode.NotFound);
        var list = (await node.Client.GetFromJsonAsync<GroupList>("/v1/groups"))!;
        Assert.Equal(["invoices"], list.Groups.Select(g => g.Id));
    }

    [Fact]
    public async Task Delete_GroupWithQueuedMessages_RemovesItsQueue()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();

        // One token, refilled every 100 s: the first message spends it, the rest stay queued.
        await node.DefineGroupAsync("slow", GroupDefinitions.Forwarding(downstream, "/slow", rate: 0.01, burst: 1, concurrency: 1));
        var delivered = await node.IngestOkAsync("slow", """{"n":0}""");
        await downstream.WaitUntilAsync(d => d.CallsTo("/slow").Count == 1, TimeSpan.FromSeconds(10), "the first message spends the token");
        var queued = new List<string>();
        for (var i = 1; i <= 3; i++)
        {
            queued.Add(await node.IngestOkAsync("slow", $$"""{"n":{{i}}}"""));
        }

        await WaitForStatsAsync(node, "slow", s => s.Queued == 3, "three messages queued");
        foreach (var id in queued)
        {
            Assert.Equal("queued", (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!.State);
        }

        using var delete = await node.Client.DeleteAsync("/v1/groups/slow");

        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        foreach (var id in queued.Append(delivered))
        {
            using var status = await node.Client.GetAsync($"/v1/messages/{id}");
            await Problems.ReadAsync(status, HttpStatusCode.NotFound);
        }

        // A group defined again under the same id starts with an empty queue and fresh counters.
        await node.DefineGroupAsync("slow", GroupDefinitions.Forwarding(downstream, "/slow", rate: 0.01, burst: 1, concurrency: 1));
        var stats = await node.StatsAsync("slow");
        Assert.Equal(0, stats.Queued);
        Assert.Equal(0, stats.Ingested);
        Assert.Equal(0, stats.Delivered);
        Assert.Single(downstream.CallsTo("/slow"));
    }

    [Fact]
    public async Task Delete_ForgetsDeliveryIds_SoARecreatedGroupAcceptsThemAsNew()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        var key = new Dictionary<string, string> { ["Idempotency-Key"] = "delivery-1" };
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders"));
        var before = await node.IngestOkAsync("orders", """{"n":1}""", key);

        using var delete = await node.Client.DeleteAsync("/v1/groups/orders");
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders"));
        using var again = await node.IngestAsync("orders", """{"n":1}""", headers: key);

        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        var accepted = (await again.Content.ReadFromJsonAsync<IngestAccepted>())!;
        Assert.False(accepted.Duplicate);
        Assert.NotEqual(before, accepted.MessageId);
        Assert.Equal(1, (await node.StatsAsync("orders")).Ingested);
    }

    [Theory]
    [InlineData("ratePerSecond 0", "ratePerSecond", """{"ratePerSecond":0,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}""")]
    [InlineData("ratePerSecond above the maximum", "ratePerSecond", """{"ratePerSecond":2000000,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}""")]
    [InlineData("ratePerSecond missing", "ratePerSecond", """{"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}""")]
    [InlineData("burst 0", "burst", """{"ratePerSecond":1,"burst":0,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}""")]
    [InlineData("burst fractional", "burst", """{"ratePerSecond":1,"burst":1.5,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}""")]
    [InlineData("burst as a string", "burst", """{"ratePerSecond":1,"burst":"1","maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}""")]
    [InlineData("maxConcurrency 0", "maxConcurrency", """{"ratePerSecond":1,"burst":1,"maxConcurrency":0,"target":{"url":"http://127.0.0.1:9/hook"}}""")]
    [InlineData("target missing", "target.url", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1}""")]
    [InlineData("target ftp", "target.url", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"ftp://127.0.0.1/hook"}}""")]
    [InlineData("target relative", "target.url", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"/hook"}}""")]
    [InlineData("target url a number", "target.url", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":42}}""")]
    [InlineData("handlerTimeoutSeconds 0", "handlerTimeoutSeconds", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"handlerTimeoutSeconds":0}""")]
    [InlineData("maxAttempts 0", "maxAttempts", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"maxAttempts":0}""")]
    [InlineData("retryBackoff max below initial", "retryBackoff.maxSeconds", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"retryBackoff":{"initialSeconds":10,"maxSeconds":5}}""")]
    [InlineData("retryBackoff initial 0", "retryBackoff.initialSeconds", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"retryBackoff":{"initialSeconds":0}}""")]
    [InlineData("retryBackoff initial as a string", "retryBackoff.initialSeconds", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"retryBackoff":{"initialSeconds":"1"}}""")]
    [InlineData("unknown scheme", "verification.scheme", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"verification":{"scheme":"md5","secret":"s"}}""")]
    [InlineData("empty secret", "verification.secret", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"verification":{"scheme":"github","secret":""}}""")]
    [InlineData("bad standard-webhooks secret", "verification.secret", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"verification":{"scheme":"standard-webhooks","secret":"whsec_not base64!"}}""")]
    [InlineData("maxPayloadBytes 0", "maxPayloadBytes", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"maxPayloadBytes":0}""")]
    [InlineData("maxPayloadBytes above the maximum", "maxPayloadBytes", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"maxPayloadBytes":33554433}""")]
    [InlineData("misspelt ratePerSec", "ratePerSec", """{"ratePerSec":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}""")]
    [InlineData("misspelt nested target.uri", "target.uri", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"uri":"http://127.0.0.1:9/hook"}}""")]
    [InlineData("target with user and password", "target.url", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://user:pass@127.0.0.1:9/hook"}}""")]
    [InlineData("target with user only", "target.url", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"https://token@127.0.0.1:9/hook"}}""")]
    [InlineData("target with empty userinfo", "target.url", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://:@127.0.0.1:9/hook"}}""")]
    [InlineData("handlerTimeoutSeconds rounding to zero", "handlerTimeoutSeconds", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"handlerTimeoutSeconds":1e-9}""")]
    [InlineData("handlerTimeoutSeconds below 1 ms", "handlerTimeoutSeconds", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"handlerTimeoutSeconds":0.0009}""")]
    [InlineData("retryBackoff initial rounding to zero", "retryBackoff.initialSeconds", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"retryBackoff":{"initialSeconds":1e-9,"maxSeconds":1}}""")]
    [InlineData("ratePerSecond twice", "ratePerSecond", """{"ratePerSecond":1,"ratePerSecond":1000,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}""")]
    [InlineData("ratePerSecond twice, other case", "ratePerSecond", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"RatePerSecond":1000}""")]
    [InlineData("target twice", "target", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"target":{"url":"http://attacker.example/"}}""")]
    [InlineData("nested target.url twice", "target.url", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook","url":"http://attacker.example/"}}""")]
    [InlineData("nested retryBackoff.maxSeconds twice", "retryBackoff.maxSeconds", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"retryBackoff":{"maxSeconds":5,"maxSeconds":50}}""")]
    [InlineData("nested verification.secret twice", "verification.secret", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"verification":{"scheme":"github","secret":"a","secret":"b"}}""")]
    [InlineData("not an object", "body", """[1,2,3]""")]
    [InlineData("null", "body", """null""")]
    [InlineData("truncated", "body", """{"ratePerSecond":1,""")]
    public async Task Put_WithInvalidField_Returns400NamingTheFieldAndCreatesNothing(string why, string field, string body)
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.PutAsync("/v1/groups/orders", Json(body));

        await Problems.AssertValidationErrorAsync(response, field, why);
        using var get = await node.Client.GetAsync("/v1/groups/orders");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Theory]
    [InlineData("ratePerSecond", """{"ratePerSecond":"1","burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}""", "must be a number")]
    [InlineData("ratePerSecond", """{"ratePerSecond":true,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}""", "must be a number")]
    [InlineData("burst", """{"ratePerSecond":1,"burst":1.5,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}""", "must be an integer")]
    [InlineData("maxPayloadBytes", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"maxPayloadBytes":"big"}""", "must be an integer")]
    [InlineData("target.url", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":42}}""", "must be a string")]
    [InlineData("target", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":"http://127.0.0.1:9/hook"}""", "must be an object")]
    [InlineData("retryBackoff", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"retryBackoff":[1,2]}""", "must be an object")]
    [InlineData("retryBackoff.initialSeconds", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"retryBackoff":{"initialSeconds":"1"}}""", "must be a number")]
    [InlineData("adaptiveRate.enabled", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"},"adaptiveRate":{"enabled":"yes"}}""", "must be true or false")]
    [InlineData("ratePerSec", """{"ratePerSec":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}""", "not a field")]
    [InlineData("target.uri", """{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"uri":"http://127.0.0.1:9/hook"}}""", "not a field")]
    [InlineData("ratePerSecond", """{"ratePerSecond":1,"ratePerSecond":2,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}""", "more than once")]
    [InlineData("body", """[1,2,3]""", "must be a JSON object")]
    public async Task Put_WithValueOfTheWrongType_SaysWhatItMustBeWithoutDotNetTypeNames(string field, string body, string expected)
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.PutAsync("/v1/groups/orders", Json(body));

        await Problems.AssertValidationErrorAsync(response, field);
        var text = await response.Content.ReadAsStringAsync();
        var message = JsonDocument.Parse(text).RootElement.GetProperty("errors").GetProperty(field)[0].GetString()!;
        Assert.Contains(expected, message, StringComparison.Ordinal);
        foreach (var leak in new[] { "System.", "ClusterQueue.", "`1", "Nullable", "Int32", "Double", "Boolean", ".NET" })
        {
            Assert.DoesNotContain(leak, text, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData(null)]
    public async Task Put_WithNonJsonContentType_Returns400AndCreatesNothing(string? contentType)
    {
        await using var node = NodeHost.Start();
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(ValidJson));
        if (contentType is not null)
        {
            content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }

        using var response = await node.Client.PutAsync("/v1/groups/orders", content);

        await Problems.AssertValidationErrorAsync(response, "body");
        using var get = await node.Client.GetAsync("/v1/groups/orders");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Theory]
    [InlineData("a%20b")]
    [InlineData("a%2Fb")]
    [InlineData("%C3%A9t%C3%A9")]
    public async Task Put_WithInvalidId_Returns400NamingIdAndCreatesNothing(string encodedId)
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.PutAsync($"/v1/groups/{encodedId}", Json(ValidJson));

        await Problems.AssertValidationErrorAsync(response, "id");
        Assert.Empty((await node.Client.GetFromJsonAsync<GroupList>("/v1/groups"))!.Groups);
    }

    /// <summary>
    /// HTTP clients and Kestrel remove "." and ".." path segments, so a group with such an id could never be read,
    /// changed or sent to. The in-memory server passes the path through untouched, which is how such an id arrives.
    /// </summary>
    [Theory]
    [InlineData(".")]
    [InlineData("..")]
    public async Task Put_WithDotSegmentId_Returns400NamingIdAndCreatesNothing(string id)
    {
        await using var node = NodeHost.Start();
        var server = (TestServer)node.Services.GetRequiredService<IServer>();
        var body = Encoding.UTF8.GetBytes(ValidJson);

        var context = await server.SendAsync(c =>
        {
            c.Request.Method = HttpMethods.Put;
            c.Request.Path = $"/v1/groups/{id}";
            c.Request.Headers.Authorization = $"Bearer {NodeHost.AdminToken}";
            c.Request.ContentType = "application/json";
            c.Request.ContentLength = body.Length;
            c.Request.Body = new MemoryStream(body);
        });

        Assert.Equal(StatusCodes.Status400BadRequest, context.Response.StatusCode);
        var problem = await JsonDocument.ParseAsync(context.Response.Body);
        Assert.Equal(["id"], problem.RootElement.GetProperty("errors").EnumerateObject().Select(e => e.Name));
        Assert.Empty((await node.Client.GetFromJsonAsync<GroupList>("/v1/groups"))!.Groups);
    }

    [Fact]
    public async Task Put_WithIdOf129Characters_Returns400NamingIdButAccepts128()
    {
        await using var node = NodeHost.Start();

        using var tooLong = await node.Client.PutAsync($"/v1/groups/{new string('x', 129)}", Json(ValidJson));
        using var longest = await node.Client.PutAsync($"/v1/groups/{new string('x', 128)}", Json(ValidJson));

        await Problems.AssertValidationErrorAsync(tooLong, "id");
        Assert.Equal(HttpStatusCode.Created, longest.StatusCode);
        Assert.Equal([new string('x', 128)], (await node.Client.GetFromJsonAsync<GroupList>("/v1/groups"))!.Groups.Select(g => g.Id));
    }

    [Theory]
    [InlineData("github", GitHubSecret)]
    [InlineData("standard-webhooks", "whsec_c2VjcmV0LWtleS10aGF0LW11c3QtbmV2ZXItbGVhaw==")]
    public async Task Responses_NeverContainTheVerificationSecret(string scheme, string secret)
    {
        await using var node = NodeHost.Start();
        var definition = $$$"""{"ratePerSecond":5,"burst":10,"maxConcurrency":2,"target":{"url":"{{{Target}}}"},"verification":{"scheme":"{{{scheme}}}","secret":"{{{secret}}}"}}""";

        using var put = await node.Client.PutAsync("/v1/groups/signed", Json(definition));
        using var replace = await node.Client.PutAsync("/v1/groups/signed", Json(definition));
        using var get = await node.Client.GetAsync("/v1/groups/signed");
        using var list = await node.Client.GetAsync("/v1/groups");
        using var patch = await node.Client.PatchAsync("/v1/groups/signed", Json("""{"burst":4}"""));

        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        foreach (var response in new[] { put, replace, get, patch })
        {
            Assert.True(response.IsSuccessStatusCode);
            var text = await response.Content.ReadAsStringAsync();
            AssertNoSecret(text, secret);
            var verification = JsonDocument.Parse(text).RootElement.GetProperty("verification");
            Assert.Equal(scheme, verification.GetProperty("scheme").GetString());
            Assert.True(verification.GetProperty("hasSecret").GetBoolean());
            Assert.False(verification.TryGetProperty("secret", out _));
        }

        var listText = await list.Content.ReadAsStringAsync();
        AssertNoSecret(listText, secret);
        var listed = JsonDocument.Parse(listText).RootElement.GetProperty("groups")[0].GetProperty("verification");
        Assert.True(listed.GetProperty("hasSecret").GetBoolean());
    }

    /// <summary>A definition stored before user:password@ was refused keeps working, but GET and list never show the password.</summary>
    [Fact]
    public async Task GetAndList_OfAGroupStoredWithUserInfoInItsTarget_ShowTheTargetWithoutIt()
    {
        using var directory = new TempDirectory();
        var path = directory.File("clusterqueue.db");
        await using (var old = NodeHost.Start(databasePath: path))
        {
            var now = DateTimeOffset.UtcNow;
            var legacy = Minimal() with { Target = new TargetDefinition { Url = "http://ops:hunter2-never-shown@127.0.0.1:9/hook?x=1" } };
            await old.Get<GroupStore>().UpsertAsync(GroupSettings.FromValidDefinition("legacy", legacy, now, now), CancellationToken.None);
        }

        await using var node = NodeHost.Start(databasePath: path);
        using var get = await node.Client.GetAsync("/v1/groups/legacy");
        using var list = await node.Client.GetAsync("/v1/groups");

        foreach (var response in new[] { get, list })
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var text = await response.Content.ReadAsStringAsync();
            Assert.DoesNotContain("hunter2", text, StringComparison.Ordinal);
            Assert.DoesNotContain("ops:", text, StringComparison.Ordinal);
            Assert.DoesNotContain("@127", text, StringComparison.Ordinal);
        }

        Assert.Equal("http://127.0.0.1:9/hook?x=1", (await node.Client.GetFromJsonAsync<GroupResponse>("/v1/groups/legacy"))!.Target.Url);
        Assert.Equal("http://127.0.0.1:9/hook?x=1", (await node.Client.GetFromJsonAsync<GroupList>("/v1/groups"))!.Groups.Single().Target.Url);
    }

    [Theory]
    [InlineData("GET", "/v1/groups")]
    [InlineData("GET", "/v1/groups/orders")]
    [InlineData("PUT", "/v1/groups/orders")]
    [InlineData("PATCH", "/v1/groups/orders")]
    [InlineData("DELETE", "/v1/groups/orders")]
    [InlineData("GET", "/v1/groups/orders/stats")]
    [InlineData("GET", "/v1/groups/orders/dead-letters")]
    [InlineData("POST", "/v1/groups/orders/dead-letters/redrive")]
    [InlineData("GET", "/v1/messages/0198c6f0-0000-7000-8000-000000000000")]
    [InlineData("POST", "/v1/debug/gc")]
    public async Task AdminApi_WithoutBearerToken_Returns401ProblemWithChallengeAndChangesNothing(string method, string path)
    {
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", Minimal());
        using var anonymous = AnonymousClient(node);
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method is "PUT" or "PATCH")
        {
            request.Content = Json("""{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/other"}}""");
        }

        using var response = await anonymous.SendAsync(request);

        await Problems.ReadAsync(response, HttpStatusCode.Unauthorized);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
        var group = (await node.Client.GetFromJsonAsync<GroupResponse>("/v1/groups/orders"))!;
        Assert.Equal(Target, group.Target.Url);
        Assert.Equal(5, group.RatePerSecond);
    }

    [Theory]
    [InlineData("Bearer wrong-token")]
    [InlineData("Bearer test-admin-token-and-more")]
    [InlineData("Basic dGVzdC1hZG1pbi10b2tlbg==")]
    [InlineData("test-admin-token")]
    [InlineData("Bearer ")]
    public async Task AdminApi_WithWrongCredentials_Returns401Problem(string authorization)
    {
        await using var node = NodeHost.Start();
        using var anonymous = AnonymousClient(node);
        using var request = new HttpRequestMessage(HttpMethod.Put, "/v1/groups/orders") { Content = Json(ValidJson) };
        request.Headers.TryAddWithoutValidation("Authorization", authorization);

        using var response = await anonymous.SendAsync(request);

        await Problems.ReadAsync(response, HttpStatusCode.Unauthorized);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
        using var get = await node.Client.GetAsync("/v1/groups/orders");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Fact]
    public async Task PublicEndpoints_WorkWithoutBearerToken()
    {
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", Minimal());
        using var anonymous = AnonymousClient(node);

        using var hook = await anonymous.PostAsync("/hooks/orders", Json("""{"a":1}"""));
        using var health = await anonymous.GetAsync("/healthz");
        using var metrics = await anonymous.GetAsync("/metrics");
        using var openApi = await anonymous.GetAsync("/openapi/v1.json");

        Assert.Equal(HttpStatusCode.Accepted, hook.StatusCode);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        Assert.Contains("clusterqueue_ingested_total", await metrics.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, openApi.StatusCode);
    }

    [Fact]
    public async Task OpenApiDocument_ListsEveryPathOfTheContract()
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.GetAsync("/openapi/v1.json");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var paths = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("paths");
        var listed = paths.EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        string[] contract =
        [
            "/v1/groups", "/v1/groups/{id}", "/hooks/{id}", "/v1/messages/{messageId}", "/v1/groups/{id}/stats",
            "/v1/groups/{id}/dead-letters", "/v1/groups/{id}/dead-letters/redrive", "/v1/groups/{id}/dead-letters/purge",
            "/v1/groups/{id}/pause", "/v1/groups/{id}/resume", "/v1/groups/{id}/purge", "/healthz", "/readyz", "/metrics",
        ];
        Assert.All(contract, path => Assert.True(listed.Contains(path), $"{path} is missing from the OpenAPI paths: {string.Join(", ", listed)}"));
        Assert.True(paths.GetProperty("/v1/groups/{id}").TryGetProperty("put", out _));
        Assert.True(paths.GetProperty("/v1/groups/{id}").TryGetProperty("patch", out _));
        Assert.True(paths.GetProperty("/v1/groups/{id}").TryGetProperty("delete", out _));
        Assert.True(paths.GetProperty("/hooks/{id}").TryGetProperty("post", out _));
    }

    [Theory]
    [InlineData("/v1/groups")]
    [InlineData("/v1/groups/{id}/dead-letters")]
    public async Task OpenApiDocument_DescribesLimitAsAnInteger(string path)
    {
        await using var node = NodeHost.Start();

        var document = JsonDocument.Parse(await node.Client.GetStringAsync("/openapi/v1.json")).RootElement;

        var limit = document.GetProperty("paths").GetProperty(path).GetProperty("get").GetProperty("parameters").EnumerateArray()
            .Single(p => p.GetProperty("name").GetString() == "limit");
        Assert.Equal("integer", limit.GetProperty("schema").GetProperty("type").GetString());
        Assert.Equal(1000, limit.GetProperty("schema").GetProperty("maximum").GetInt32());
    }

    /// <summary>A client for the same in-process server without the admin token that <see cref="NodeHost.Client"/> carries.</summary>
    private static HttpClient AnonymousClient(NodeHost node) =>
        ((TestServer)node.Services.GetRequiredService<IServer>()).CreateClient();

    /// <summary>Stats combine the store's counts with the actor's in-flight count, read a moment apart: wait for them to settle.</summary>
    private static async Task WaitForStatsAsync(NodeHost node, string group, Func<GroupStats, bool> condition, string what)
    {
        await Eventually.ReadAsync(() => node.StatsAsync(group), condition, what);
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static void AssertNoSecret(string text, string secret)
    {
        Assert.DoesNotContain(secret, text, StringComparison.Ordinal);

        // The key part alone must not leak either (a response that stripped only the prefix would still leak it).
        var key = secret.StartsWith("whsec_", StringComparison.Ordinal) ? secret["whsec_".Length..] : secret;
        Assert.DoesNotContain(key, text, StringComparison.Ordinal);
    }
}

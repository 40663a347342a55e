using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Queueing;

public sealed class QueueEndpointsTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData("0198c6f0-0000-7000-8000-000000000000")]
    [InlineData("not-a-message-id")]
    public async Task GetMessage_Unknown_Returns404Problem(string messageId)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders"));
        await node.IngestOkAsync("orders", """{"n":1}""");

        using var response = await node.Client.GetAsync($"/v1/messages/{messageId}");

        var problem = await Problems.ReadAsync(response, HttpStatusCode.NotFound);
        Assert.Contains(messageId, problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task GetMessage_Delivered_ReportsDeliveredAfterOneAttempt()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders"));
        var id = await node.IngestOkAsync("orders", """{"n":1}""");
        await downstream.WaitUntilAsync(d => d.CallsTo("/orders").Count == 1, Wait, "the message is delivered");

        var status = await PollStatusAsync(node, id, "delivered");

        Assert.Equal(id, status.MessageId);
        Assert.Equal("orders", status.GroupId);
        Assert.Equal(1, status.Attempts);
        Assert.Null(status.LastError);
        Assert.NotNull(status.CompletedAt);
        Assert.True(status.CompletedAt >= status.CreatedAt);
        Assert.Equal(1, (await node.StatsAsync("orders")).Delivered);
    }

    [Fact]
    public async Task DeadLetters_OfUnknownGroup_Returns404Problem()
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.GetAsync("/v1/groups/nope/dead-letters");

        await Problems.ReadAsync(response, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task DeadLetters_OfGroupWithNone_ReturnsAnEmptyPage()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders"));

        var page = (await node.Client.GetFromJsonAsync<DeadLetterList>("/v1/groups/orders/dead-letters"))!;

        Assert.Empty(page.DeadLetters);
        Assert.Null(page.NextAfter);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1001")]
    public async Task DeadLetters_WithLimitOutOfRange_Returns400NamingLimit(string limit)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders"));

        using var response = await node.Client.GetAsync($"/v1/groups/orders/dead-letters?limit={limit}");

        var problem = await Problems.ReadAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal(["limit"], problem.GetProperty("errors").EnumerateObject().Select(e => e.Name));
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("1.5")]
    [InlineData("1e3")]
    [InlineData("99999999999")]
    public async Task DeadLetters_WithNonNumericLimit_Returns400NamingLimit(string limit)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders"));

        using var response = await node.Client.GetAsync($"/v1/groups/orders/dead-letters?limit={limit}");

        await Problems.AssertValidationErrorAsync(response, "limit");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Redrive_OfUnknownGroup_Returns404Problem(bool withBody)
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.PostAsync("/v1/groups/nope/dead-letters/redrive", withBody ? Json("""{"messageIds":["x"]}""") : null);

        await Problems.ReadAsync(response, HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("/v1/groups/nope/dead-letters/purge?confirm=nope")]
    [InlineData("/v1/groups/nope/dead-letters/purge")]
    public async Task PurgeDeadLetters_OfUnknownGroup_Returns404Problem(string path)
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.PostAsync(path, null);

        await Problems.ReadAsync(response, HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("messageIds", """{"messageIds":""")]
    [InlineData("body", """{"messageIds":[]""")]
    [InlineData("body", """not json""")]
    [InlineData("messageIds", """{"messageIds":"one-id"}""")]
    [InlineData("messageIds[0]", """{"messageIds":[42]}""")]
    [InlineData("messageId", """{"messageId":["x"]}""")]
    [InlineData("deadAfter", """{"deadAfter":"yesterday"}""")]
    [InlineData("deadBefore", """{"deadBefore":42}""")]
    [InlineData("messageIds", """{"messageIds":["x"],"messageIds":[]}""")]
    [InlineData("deadAfter", """{"deadAfter":"2026-01-01T00:00:00Z","DeadAfter":"2000-01-01T00:00:00Z"}""")]
    public async Task Redrive_WithMalformedBody_Returns400NamingTheFieldAndRedrivesNothing(string field, string body)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        downstream.Reply = _ => new DownstreamReply(500, Body: "broken");
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders") with { MaxAttempts = 1 });
        var id = await node.IngestOkAsync("orders", """{"n":1}""");
        await PollStatusAsync(node, id, "dead");

        using var response = await node.Client.PostAsync("/v1/groups/orders/dead-letters/redrive", Json(body));

        var problem = await Problems.ReadAsync(response, HttpStatusCode.BadRequest);
        var keys = problem.GetProperty("errors").EnumerateObject().Select(e => e.Name).ToList();
        Assert.True(keys.SequenceEqual([field]), $"expected errors keyed [{field}], got [{string.Join(", ", keys)}]");
        Assert.Equal("dead", (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!.State);
        var stats = await node.StatsAsync("orders");
        Assert.Equal(1, stats.Dead);
        Assert.Equal(0, stats.Queued);
        Assert.Single(downstream.CallsTo("/orders"));
    }

    [Theory]
    [InlineData("messageIds", """{"messageIds":"one-id"}""", "must be an array")]
    [InlineData("messageIds[1]", """{"messageIds":["a",42]}""", "must be a string")]
    [InlineData("deadAfter", """{"deadAfter":"yesterday"}""", "must be a date and time")]
    [InlineData("deadBefore", """{"deadBefore":42}""", "must be a date and time")]
    [InlineData("messageIds", """{"messageIds":["x"],"messageIds":["y"]}""", "more than once")]
    public async Task PurgeDeadLetters_WithValueOfTheWrongType_SaysWhatItMustBeWithoutDotNetTypeNames(string field, string body, string expected)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders"));

        using var response = await node.Client.PostAsync("/v1/groups/orders/dead-letters/purge?confirm=orders", Json(body));

        await Problems.AssertValidationErrorAsync(response, field);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains(expected, JsonDocument.Parse(text).RootElement.GetProperty("errors").GetProperty(field)[0].GetString()!, StringComparison.Ordinal);
        foreach (var leak in new[] { "System.", "ClusterQueue.", "`1", "Nullable", "DateTimeOffset", "IReadOnlyList" })
        {
            Assert.DoesNotContain(leak, text, StringComparison.Ordinal);
        }
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<MessageStatus> PollStatusAsync(NodeHost node, string messageId, string state)
        => await Eventually.ReadAsync(async () => (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{messageId}"))!, s => s.State == state, $"message {messageId} to be '{state}'", Wait);
}

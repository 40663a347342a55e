using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Cluster;
using ClusterQueue.Tests.Support;
using Xunit.Abstractions;

namespace ClusterQueue.Tests.Ingress;

/// <summary>Synchronous mode, POST /hooks/{id}?wait=, on the embedded node, the cluster and the SQS queue.</summary>
public sealed class SyncWaitTests(PostgresServer server, SqsEmulator emulator, ITestOutputHelper output) : IClassFixture<PostgresServer>, IClassFixture<SqsEmulator>
{
    private static readonly DownstreamReply Created = new(201, Body: """{"order":42,"state":"made"}""", ContentType: "application/json; charset=utf-8");

    [Fact]
    public async Task Embedded_Wait_AnswersWithTheDownstreamsStatusAndBody_AndTheStatusKeepsIt()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => Created;
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("sync", GroupDefinitions.Forwarding(downstream, "/sync"));

        using var response = await node.Client.PostAsync("/hooks/sync?wait=10", new StringContent("""{"order":42}"""));

        await AssertDownstreamAnswerAsync(response);
        var id = response.Headers.GetValues("ClusterQueue-Message-Id").Single();
        Assert.Equal(id, downstream.CallsTo("/sync").Single().MessageId);
        var status = (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!;
        Assert.Equal("delivered", status.State);
        Assert.Equal(new MessageResult(201, "application/json; charset=utf-8", """{"order":42,"state":"made"}""", null), status.Result);
    }

    [Fact]
    public async Task Embedded_WaitThatRunsOut_Answers202WithLocation_AndTheResultShowsLater()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => Created with { Delay = TimeSpan.FromSeconds(2) };
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("slow", GroupDefinitions.Forwarding(downstream, "/slow"));

        var clock = Stopwatch.StartNew();
        using var response = await node.Client.PostAsync("/hooks/slow?wait=0.5", new StringContent("{}"));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.45), $"answered after {clock.Elapsed.TotalMilliseconds:0} ms of a 0.5 s wait");
        var accepted = (await response.Content.ReadFromJsonAsync<IngestAccepted>())!;
        Assert.Equal($"/v1/messages/{accepted.MessageId}", response.Headers.Location?.OriginalString);
        var status = await Eventually.ReadAsync(
            () => node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{accepted.MessageId}")!,
            s => s!.State == "delivered",
            "the delivery after the wait ran out");
        Assert.Equal(201, status!.Result!.Status);
    }

    [Fact]
    public async Task Embedded_DeadLetter_Answers502WithTheLastError()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(500, Body: "boom");
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("dies", GroupDefinitions.Forwarding(downstream, "/dies") with { MaxAttempts = 1 });

        using var response = await node.Client.PostAsync("/hooks/dies?wait=10", new StringContent("{}"));

        var problem = await Problems.ReadAsync(response, HttpStatusCode.BadGateway);
        Assert.Equal(1, problem.GetProperty("attempts").GetInt32());
        Assert.Contains("HTTP 500", problem.GetProperty("lastError").GetString(), StringComparison.Ordinal);
        Assert.Equal(downstream.CallsTo("/dies").Single().MessageId, problem.GetProperty("messageId").GetString());
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("-2")]
    [InlineData("NaN")]
    public async Task Embedded_BadWait_Is400NamingIt_AndStoresNothing(string wait)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("sync", GroupDefinitions.Forwarding(downstream, "/sync"));

        using var response = await node.Client.PostAsync($"/hooks/sync?wait={wait}", new StringContent("{}"));

        await Problems.AssertValidationErrorAsync(response, "wait");
        Assert.Equal(0, (await node.StatsAsync("sync")).Ingested);
    }

    [Fact]
    public async Task Cluster_WaitAtANodeThatDoesNotOwnTheGroup_GetsTheOwnersResult()
    {
        string[] nodes = ["node-a", "node-b"];
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => Created;
        await using var cluster = await ClusterRig.CreateAsync(server);
        await cluster.StartAllAsync(nodes);
        var group = ClusterRig.GroupOwnedBy("node-b", nodes, "sync");
        await ClusterTests.DefineAsync(cluster["node-a"], group, GroupDefinitions.Forwarding(downstream, $"/{group}"));

        for (var i = 0; i < 3; i++)
        {
            var clock = Stopwatch.StartNew();
            using var response = await cluster["node-a"].Client.PostAsync($"/hooks/{group}?wait=20", new StringContent("""{"order":42}"""));
            output.WriteLine($"answer {i + 1} after {clock.Elapsed.TotalMilliseconds:0} ms");
            await AssertDownstreamAnswerAsync(response);
        }

        Assert.All(downstream.CallsTo($"/{group}"), call => Assert.Equal("node-b", call.Node));
    }

    [Fact]
    public async Task Sqs_Wait_AnswersWithTheDownstreamsStatusAndBody()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => Created;
        await using var node = NodeHost.Start(SqsNode.Settings(emulator.Endpoint));
        await node.DefineGroupAsync("sqssync", GroupDefinitions.Forwarding(downstream, "/sqssync"));

        using var response = await node.Client.PostAsync("/hooks/sqssync?wait=10", new StringContent("""{"order":42}"""));

        await AssertDownstreamAnswerAsync(response);
        var id = response.Headers.GetValues("ClusterQueue-Message-Id").Single();
        Assert.Equal(201, (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!.Result!.Status);
    }

    private static async Task AssertDownstreamAnswerAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("made", body.RootElement.GetProperty("state").GetString());
    }
}

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
        Assert.Equal(500, problem.GetProperty("downstreamStatus").GetInt32());
    }

    [Fact]
    public async Task Embedded_ABodyOverMaxResultBytes_IsNotKept_TheStatusAndContentTypeAre()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => Created;
        await using var node = NodeHost.Start(new Dictionary<string, string?> { ["ClusterQueue:Ingress:MaxResultBytes"] = "16" });
        await node.DefineGroupAsync("big", GroupDefinitions.Forwarding(downstream, "/big"));

        using var response = await node.Client.PostAsync("/hooks/big?wait=10", new StringContent("{}"));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        var id = response.Headers.GetValues("ClusterQueue-Message-Id").Single();
        var status = (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!;
        Assert.Equal(new MessageResult(201, "application/json; charset=utf-8", null, null), status.Result);
    }

    [Fact]
    public async Task Embedded_ADuplicateDeliveryIdWithAWait_WaitsForTheFirstMessage()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => Created with { Delay = TimeSpan.FromSeconds(1) };
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("dup", GroupDefinitions.Forwarding(downstream, "/dup"));

        var answers = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => node.Client.SendAsync(Order42("/hooks/dup?wait=10"))));

        foreach (var answer in answers)
        {
            await AssertDownstreamAnswerAsync(answer);
        }

        Assert.Single(answers.Select(a => a.Headers.GetValues("ClusterQueue-Message-Id").Single()).Distinct());
        Assert.Single(downstream.CallsTo("/dup"));

        // A retry after the delivery gets the kept result at once.
        using var again = await node.Client.SendAsync(Order42("/hooks/dup?wait=10"));
        await AssertDownstreamAnswerAsync(again);
        Assert.Single(downstream.CallsTo("/dup"));
    }

    [Fact]
    public async Task Embedded_ASenderThatHangsUp_EndsOnlyItsWait_TheMessageIsDelivered()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => Created with { Delay = TimeSpan.FromSeconds(3) };
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("gone", GroupDefinitions.Forwarding(downstream, "/gone"));
        var waiters = node.Get<ClusterQueue.Node.Ingress.OutcomeWaiters>();

        using (var hangUp = new CancellationTokenSource())
        {
            var send = node.Client.PostAsync("/hooks/gone?wait=20", new StringContent("{}"), hangUp.Token);
            await downstream.WaitUntilAsync(d => d.CallsTo("/gone").Count == 1, TimeSpan.FromSeconds(10), "the call");
            Assert.Equal(1, waiters.Waiting);
            await hangUp.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => send);
        }

        // The wait is gone while the call still runs (3 s): it left by itself, not at the outcome's announcement.
        await Eventually.TrueAsync(() => waiters.Waiting == 0, "the left wait's entry gone", TimeSpan.FromSeconds(2));
        var id = downstream.CallsTo("/gone").Single().MessageId;
        Assert.NotEqual("delivered", (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!.State);

        var status = await Eventually.ReadAsync(() => node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}")!, s => s!.State == "delivered", "the delivery");
        Assert.Equal(201, status!.Result!.Status);
        Assert.Single(downstream.CallsTo("/gone"));
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("-2")]
    [InlineData("NaN")]
    [InlineData("1e-9")]
    [InlineData("0.000000001")]
    [InlineData("0.0009")]
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
    public async Task Embedded_WaitOfOneMillisecond_IsAccepted()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => Created with { Delay = TimeSpan.FromSeconds(1) };
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("sync", GroupDefinitions.Forwarding(downstream, "/sync"));

        // The shortest wait there is: it runs out before the slow call ends, so the answer is the plain 202.
        using var response = await node.Client.PostAsync("/hooks/sync?wait=0.001", new StringContent("{}"));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
    }

    [Theory]
    [InlineData("")]
    [InlineData("reset done")]
    public async Task Embedded_DownstreamAnswers205_TheWaitAnswers205WithoutABody(string body)
    {
        // Kestrel will not send a 205 with a body, so the target is written by hand; some servers do send one.
        await using var target = RawHttpServer.Start(
            $"HTTP/1.1 205 Reset Content\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}");
        await using var node = new KestrelNode();
        await node.DefineGroupAsync("reset", new GroupDefinition
        {
            RatePerSecond = 100,
            Burst = 100,
            MaxConcurrency = 10,
            MaxAttempts = 1,
            Target = new TargetDefinition { Url = target.Url("/reset") },
        });

        using var response = await node.Client.PostAsync("/hooks/reset?wait=10", new StringContent("{}"));

        Assert.Equal(HttpStatusCode.ResetContent, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        var id = response.Headers.GetValues("ClusterQueue-Message-Id").Single();
        var status = (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!;
        Assert.Equal(("delivered", 205), (status.State, status.Result!.Status));
        Assert.Equal(1, target.Requests);
    }

    [Fact]
    public async Task Cluster_WaitAtANodeThatDoesNotOwnTheGroup_GetsTheOwnersResult()
    {
        string[] nodes = ["node-a", "node-b"];
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = call => call.Path!.Contains("dies", StringComparison.Ordinal) ? new DownstreamReply(500, Body: "boom") : Created;
        await using var cluster = await ClusterRig.CreateAsync(server);
        await cluster.StartAllAsync(nodes);
        var group = ClusterRig.GroupOwnedBy("node-b", nodes, "sync");
        var dies = ClusterRig.GroupOwnedBy("node-b", nodes, "syncdies");
        await ClusterTests.DefineAsync(cluster["node-a"], group, GroupDefinitions.Forwarding(downstream, $"/{group}"));
        await ClusterTests.DefineAsync(cluster["node-a"], dies, GroupDefinitions.Forwarding(downstream, $"/{dies}") with { MaxAttempts = 1 });

        // What node-a's listener hears: the owner's commit must announce each outcome, not leave it to the 2 s re-read.
        var announced = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var listener = new Npgsql.NpgsqlConnection(cluster.ConnectionString);
        await listener.OpenAsync();
        listener.Notification += (_, n) => announced.Enqueue(n.Payload);
        await using (var listen = new Npgsql.NpgsqlCommand("LISTEN clusterqueue_outcomes;", listener))
        {
            await listen.ExecuteNonQueryAsync();
        }

        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var clock = Stopwatch.StartNew();
            using var response = await cluster["node-a"].Client.PostAsync($"/hooks/{group}?wait=20", new StringContent("""{"order":42}"""));
            output.WriteLine($"answer {i + 1} after {clock.Elapsed.TotalMilliseconds:0} ms");
            await AssertDownstreamAnswerAsync(response);
            ids.Add(response.Headers.GetValues("ClusterQueue-Message-Id").Single());
        }

        using var dead = await cluster["node-a"].Client.PostAsync($"/hooks/{dies}?wait=20", new StringContent("{}"));
        var problem = await Problems.ReadAsync(dead, HttpStatusCode.BadGateway);
        Assert.Equal(500, problem.GetProperty("downstreamStatus").GetInt32());
        ids.Add(problem.GetProperty("messageId").GetString()!);

        Assert.All(downstream.CallsTo($"/{group}").Concat(downstream.CallsTo($"/{dies}")), call => Assert.Equal("node-b", call.Node));
        var heard = Stopwatch.StartNew();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!ids.All(announced.Contains) && DateTime.UtcNow < deadline)
        {
            await listener.WaitAsync(TimeSpan.FromMilliseconds(200));
        }

        output.WriteLine($"announcements read after {heard.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(ids.Order(StringComparer.Ordinal), announced.Distinct().Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Cluster_WaitThatRunsOutAtANonOwner_Answers202_AndThatNodeShowsTheResultLater()
    {
        string[] nodes = ["node-a", "node-b"];
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => Created with { Delay = TimeSpan.FromSeconds(1.5) };
        await using var cluster = await ClusterRig.CreateAsync(server);
        await cluster.StartAllAsync(nodes);
        var group = ClusterRig.GroupOwnedBy("node-b", nodes, "late");
        await ClusterTests.DefineAsync(cluster["node-a"], group, GroupDefinitions.Forwarding(downstream, $"/{group}"));

        using var response = await cluster["node-a"].Client.PostAsync($"/hooks/{group}?wait=0.5", new StringContent("{}"));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var accepted = (await response.Content.ReadFromJsonAsync<IngestAccepted>())!;
        Assert.Equal($"/v1/messages/{accepted.MessageId}", response.Headers.Location?.OriginalString);
        var status = await Eventually.ReadAsync(
            () => cluster["node-a"].Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{accepted.MessageId}")!,
            s => s!.State == "delivered",
            "the owner's delivery, read at the node that took the message");
        Assert.Equal(new MessageResult(201, "application/json; charset=utf-8", """{"order":42,"state":"made"}""", null), status!.Result);
        Assert.Equal("node-b", downstream.CallsTo($"/{group}").Single().Node);
    }

    [Fact]
    public async Task SqsCluster_WaitAtANodeThatDoesNotOwnTheGroup_GetsTheOwnersResultOrDeadLetter()
    {
        string[] nodes = ["node-a", "node-b"];
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = call => call.Path!.Contains("dies", StringComparison.Ordinal) ? new DownstreamReply(500, Body: "boom") : Created;
        await using var cluster = await ClusterRig.CreateAsync(server);
        var prefix = SqsNode.UniquePrefix();
        foreach (var node in nodes)
        {
            var settings = cluster.Settings(node);
            foreach (var (key, value) in SqsNode.ProcessSettings(emulator.Endpoint, prefix))
            {
                settings[key] = value;
            }

            await cluster.StartAsync(node, settings);
        }

        var made = ClusterRig.GroupOwnedBy("node-b", nodes, "sqsmade");
        var dies = ClusterRig.GroupOwnedBy("node-b", nodes, "sqsdies");
        await ClusterTests.DefineAsync(cluster["node-a"], made, GroupDefinitions.Forwarding(downstream, $"/{made}"));
        await ClusterTests.DefineAsync(cluster["node-a"], dies, GroupDefinitions.Forwarding(downstream, $"/{dies}") with { MaxAttempts = 1 });

        var clock = Stopwatch.StartNew();
        using var delivered = await cluster["node-a"].Client.PostAsync($"/hooks/{made}?wait=20", new StringContent("""{"order":42}"""));
        output.WriteLine($"delivered answer after {clock.Elapsed.TotalMilliseconds:0} ms");
        using var dead = await cluster["node-a"].Client.PostAsync($"/hooks/{dies}?wait=20", new StringContent("{}"));

        await AssertDownstreamAnswerAsync(delivered);
        var problem = await Problems.ReadAsync(dead, HttpStatusCode.BadGateway);
        Assert.Equal(500, problem.GetProperty("downstreamStatus").GetInt32());
        Assert.All(downstream.CallsTo($"/{made}").Concat(downstream.CallsTo($"/{dies}")), call => Assert.Equal("node-b", call.Node));
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

    private static HttpRequestMessage Order42(string path)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent("""{"order":42}""") };
        request.Headers.Add("Idempotency-Key", "order-42");
        return request;
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Observability;
using ClusterQueue.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace ClusterQueue.Tests.Observability;

/// <summary>
/// A trace runs from the sender through the queue to the target: the sender's context is kept with the message (in
/// each store and in SQS), each delivery is a span in that trace, and the target receives the trace context.
/// </summary>
public sealed class TraceContextTests(PostgresServer postgres, SqsEmulator sqs) : IClassFixture<PostgresServer>, IClassFixture<SqsEmulator>
{
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    [InlineData("sqs")]
    public async Task TracesOff_TheSendersTraceParent_IsKeptWithTheMessage_AndForwarded_AfterARestart(string backend)
    {
        await using var target = await Target.StartAsync();
        using var directory = new TempDirectory();
        var settings = await SettingsAsync(backend);
        var sent = NewTraceParent();

        var first = NodeHost.Start(settings, directory.File("node.db"));
        try
        {
            await first.DefineGroupAsync("traced", Forwarding(target));
            using var pause = await first.Client.PostAsync("/v1/groups/traced/pause", content: null);
            Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
            await first.IngestOkAsync("traced", """{"n":1}""", new Dictionary<string, string> { ["traceparent"] = sent });
            await first.IngestOkAsync("traced", """{"n":2}""");
        }
        finally
        {
            await first.DisposeAsync();
        }

        // A new process's memory holds nothing of the first: what reaches the target was kept with the message.
        await using var second = NodeHost.Start(settings, directory.File("node.db"));
        using var resume = await second.Client.PostAsync("/v1/groups/traced/resume", content: null);
        Assert.Equal(HttpStatusCode.OK, resume.StatusCode);
        await Eventually.TrueAsync(() => target.Calls.Count == 2, "both messages delivered", TimeSpan.FromSeconds(30));

        Assert.Equal(sent, target.Calls.Single(c => c.Body == """{"n":1}""").TraceParent);
        Assert.Null(target.Calls.Single(c => c.Body == """{"n":2}""").TraceParent);
    }

    [Fact]
    public async Task TracesOn_EachAttemptIsADeliverySpanInTheIngestTrace_AndTheTargetGetsItsContext()
    {
        await using var target = await Target.StartAsync(failFirst: 1);
        var spans = new SpanList();
        await using var node = new TracedNode(spans);
        var sent = ActivityContext.Parse(NewTraceParent(), null);
        await node.DefineGroupAsync("traced", Forwarding(target) with { RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.05, MaxSeconds = 0.05 } });

        var id = await node.IngestAsync("traced", """{"n":1}""", $"00-{sent.TraceId}-{sent.SpanId}-01");
        await Eventually.TrueAsync(() => spans.InTrace(sent.TraceId).Count(s => s.DisplayName == "deliver") == 2, "two delivery spans", TimeSpan.FromSeconds(20));
        var trace = spans.InTrace(sent.TraceId);

        var ingest = Assert.Single(trace, s => s.DisplayName == "ingest");
        Assert.Equal(ActivityKind.Producer, ingest.Kind);
        Assert.Equal("traced", ingest.GetTagItem("messaging.destination.name"));
        Assert.Equal(id, ingest.GetTagItem("messaging.message.id"));
        Assert.Equal("accepted", ingest.GetTagItem("clusterqueue.outcome"));
        var server = Assert.Single(trace, s => s.SpanId == ingest.ParentSpanId);
        Assert.Equal(ActivityKind.Server, server.Kind);
        Assert.Equal(sent.SpanId, server.ParentSpanId);

        var deliveries = trace.Where(s => s.DisplayName == "deliver").OrderBy(s => s.GetTagItem("clusterqueue.attempt")).ToList();
        Assert.All(deliveries, delivery =>
        {
            Assert.Equal(ActivityKind.Consumer, delivery.Kind);
            Assert.Equal(ingest.SpanId, delivery.ParentSpanId);
            Assert.Contains(delivery.Links, link => link.Context.SpanId == ingest.SpanId && link.Context.TraceId == sent.TraceId);
            Assert.Equal("traced", delivery.GetTagItem("messaging.destination.name"));
            Assert.Equal(id, delivery.GetTagItem("messaging.message.id"));
            Assert.Equal(1, delivery.GetTagItem("clusterqueue.step"));
        });
        Assert.Equal([1, 2], deliveries.Select(d => d.GetTagItem("clusterqueue.attempt")));
        Assert.Equal(["failed", "delivered"], deliveries.Select(d => d.GetTagItem("clusterqueue.outcome")));
        Assert.Equal(ActivityStatusCode.Error, deliveries[0].Status);
        Assert.Equal(500, deliveries[0].GetTagItem("http.response.status_code"));

        // What the target received: a context in the ingest's trace, whose parent is the HTTP call each delivery made.
        Assert.Equal(2, target.Calls.Count);
        foreach (var (call, delivery) in target.Calls.OrderBy(c => c.Attempt).Zip(deliveries))
        {
            var received = ActivityContext.Parse(call.TraceParent!, null);
            Assert.Equal(sent.TraceId, received.TraceId);
            var client = Assert.Single(trace, s => s.SpanId == received.SpanId);
            Assert.Equal(ActivityKind.Client, client.Kind);
            Assert.Equal(delivery.SpanId, client.ParentSpanId);
        }
    }

    [Fact]
    public async Task TracesOff_NoTracerProviderIsBuilt()
    {
        await using var node = NodeHost.Start();

        Assert.Null(node.Services.GetService<TracerProvider>());
    }

    [Fact]
    public async Task TracesOn_WithoutASendersContext_EachDeliveryStillJoinsItsIngest()
    {
        await using var target = await Target.StartAsync();
        var spans = new SpanList();
        await using var node = new TracedNode(spans);
        await node.DefineGroupAsync("traced", Forwarding(target));

        var id = await node.IngestAsync("traced", """{"n":1}""", traceParent: null);
        await Eventually.TrueAsync(() => spans.All.Any(s => s.DisplayName == "deliver" && Equals(s.GetTagItem("messaging.message.id"), id)), "the delivery span", TimeSpan.FromSeconds(20));

        var ingest = spans.All.Single(s => s.DisplayName == "ingest" && Equals(s.GetTagItem("messaging.message.id"), id));
        var delivery = spans.All.Single(s => s.DisplayName == "deliver" && Equals(s.GetTagItem("messaging.message.id"), id));
        Assert.Equal(ingest.TraceId, delivery.TraceId);
        Assert.Equal(ingest.SpanId, delivery.ParentSpanId);
        Assert.Equal(ingest.TraceId, ActivityContext.Parse(Assert.Single(target.Calls).TraceParent!, null).TraceId);
    }

    private async Task<Dictionary<string, string?>> SettingsAsync(string backend) => backend switch
    {
        "sqlite" => [],
        "postgres" => new()
        {
            ["ClusterQueue:Store"] = "postgres",
            ["ClusterQueue:Postgres:ConnectionString"] = await postgres.CreateDatabaseAsync(),
            ["ClusterQueue:NodeId"] = "traced-node",
        },
        _ => SqsNode.Settings(sqs.Endpoint),
    };

    private static GroupDefinition Forwarding(Target target) => new()
    {
        RatePerSecond = 100,
        Burst = 10,
        MaxConcurrency = 1,
        Target = new TargetDefinition { Url = target.Url },
    };

    private static string NewTraceParent() => $"00-{ActivityTraceId.CreateRandom()}-{ActivitySpanId.CreateRandom()}-01";

    /// <summary>A node in process with traces on and an in-memory exporter, as OTLP would receive them.</summary>
    private sealed class TracedNode : IAsyncDisposable
    {
        private readonly TempDirectory _directory = new();
        private readonly WebApplicationFactory<Program> _factory;
        private readonly HttpClient _client;

        public TracedNode(SpanList spans)
        {
            _factory = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
            {
                builder.UseSetting("ClusterQueue:Sqlite:Path", _directory.File("traced.db"));
                builder.UseSetting("ClusterQueue:AdminToken", NodeHost.AdminToken);
                builder.UseSetting("ClusterQueue:Observability:Traces", "true");
                builder.UseSetting("Logging:LogLevel:Default", "Warning");
                builder.ConfigureServices(services => services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(spans)));
            });
            _client = _factory.CreateClient();
            _client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", NodeHost.AdminToken);
        }

        public async Task DefineGroupAsync(string id, GroupDefinition definition)
        {
            using var response = await _client.PutAsync($"/v1/groups/{id}", System.Net.Http.Json.JsonContent.Create(definition));
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        }

        public async Task<string> IngestAsync(string group, string body, string? traceParent)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/hooks/{group}") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
            if (traceParent is not null)
            {
                request.Headers.TryAddWithoutValidation("traceparent", traceParent);
            }

            using var response = await _client.SendAsync(request);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            return (await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync<IngestAccepted>(response.Content))!.MessageId;
        }

        public async ValueTask DisposeAsync()
        {
            _client.Dispose();
            await _factory.DisposeAsync();
            _directory.Dispose();
        }
    }

    /// <summary>Spans as the exporter hands them over, from whichever thread ends them.</summary>
    private sealed class SpanList : ICollection<Activity>
    {
        private readonly List<Activity> _spans = [];

        public IReadOnlyList<Activity> All
        {
            get
            {
                lock (_spans)
                {
                    return [.. _spans];
                }
            }
        }

        public int Count => All.Count;

        public bool IsReadOnly => false;

        /// <summary>Other tests' nodes share the process, and every tracer provider hears every ClusterQueue source.</summary>
        public IReadOnlyList<Activity> InTrace(ActivityTraceId traceId) => [.. All.Where(s => s.TraceId == traceId)];

        public void Add(Activity item)
        {
            lock (_spans)
            {
                _spans.Add(item);
            }
        }

        public void Clear()
        {
            lock (_spans)
            {
                _spans.Clear();
            }
        }

        public bool Contains(Activity item) => All.Contains(item);

        public void CopyTo(Activity[] array, int arrayIndex) => All.ToList().CopyTo(array, arrayIndex);

        public bool Remove(Activity item)
        {
            lock (_spans)
            {
                return _spans.Remove(item);
            }
        }

        public IEnumerator<Activity> GetEnumerator() => All.GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    private sealed record TargetCall(int Attempt, string Body, string? TraceParent);

    /// <summary>A target on loopback that keeps what each call carried, failing the first few with 500.</summary>
    private sealed class Target : IAsyncDisposable
    {
        private readonly ConcurrentQueue<TargetCall> _calls = new();
        private WebApplication _app = null!;
        private int _failures;

        public string Url { get; private set; } = "";

        public IReadOnlyList<TargetCall> Calls => [.. _calls];

        public static async Task<Target> StartAsync(int failFirst = 0)
        {
            var target = new Target { _failures = failFirst };
            (target._app, var address) = await LoopbackServer.StartAsync(target.HandleAsync);
            target.Url = new Uri(address, "/traced").ToString();
            return target;
        }

        public ValueTask DisposeAsync() => _app.DisposeAsync();

        private async Task HandleAsync(HttpContext context)
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync();
            _calls.Enqueue(new TargetCall(
                int.Parse(context.Request.Headers["ClusterQueue-Attempt"].ToString(), System.Globalization.CultureInfo.InvariantCulture),
                body,
                context.Request.Headers.TryGetValue("traceparent", out var traceParent) ? traceParent.ToString() : null));
            context.Response.StatusCode = Interlocked.Decrement(ref _failures) >= 0 ? 500 : 200;
        }
    }
}

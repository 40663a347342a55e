using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;

namespace ClusterQueue.Bench.Probe;

/// <summary>
/// The recording downstream: answers every forwarded POST with 200 as fast as Kestrel can, after noting when the
/// handler started. With holding on, calls for a group wait until <see cref="Release"/> opens that group: a group
/// defined with maxConcurrency 1 then has one call parked, starts nothing more, and its bucket fills to its burst,
/// so the rate run starts every group from a known full bucket.
/// </summary>
public sealed class Downstream : IAsyncDisposable
{
    public const string GroupHeader = "ClusterQueue-Group";
    public const string MessageIdHeader = "ClusterQueue-Message-Id";
    public const string AttemptHeader = "ClusterQueue-Attempt";
    public const string NodeHeader = "ClusterQueue-Node";
    public const string StepHeader = "ClusterQueue-Step";
    public const string ContinueHeader = "ClusterQueue-Continue";
    public const string StartedAtHeader = "ClusterQueue-Started-At";

    /// <summary>Calls for this group are a long job: each step up to <see cref="ChainSteps"/> answers with a continuation.</summary>
    public const string ChainGroup = "chain";
    public const int ChainSteps = 5;

    private readonly ConcurrentQueue<Arrival> _arrivals = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _gates = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _latest = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _connections = new(StringComparer.Ordinal);
    private readonly bool _holding;
    private WebApplication? _app;

    private Downstream(bool holding) => _holding = holding;

    public string BaseUrl { get; private set; } = "";

    public int Count => _arrivals.Count;

    public static async Task<Downstream> StartAsync(int port, bool holding)
    {
        var downstream = new Downstream(holding);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        app.MapPost("/hooks/{group}", downstream.HandleAsync);
        await app.StartAsync();
        downstream._app = app;
        downstream.BaseUrl = $"http://127.0.0.1:{port}";
        return downstream;
    }

    public IReadOnlyList<Arrival> Snapshot() => _arrivals.ToArray();

    /// <summary>When the group's latest call arrived; 0 before its first.</summary>
    public long LatestArrival(string group) => _latest.GetValueOrDefault(group);

    /// <summary>Lets the group's parked call (and any later one) through.</summary>
    public void Release(string group) => Gate(group).TrySetResult();

    private TaskCompletionSource Gate(string group) =>
        _gates.GetOrAdd(group, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    private async Task<IResult> HandleAsync(string group, HttpRequest request)
    {
        // First thing: the time the downstream's handler starts is the figure end-to-end latency is about.
        var at = Clock.Now;
        var headers = request.Headers;
        var sentAt = await ReadSentAtAsync(request);
        var newConnection = _connections.TryAdd(request.HttpContext.Connection.Id, 0);
        _ = int.TryParse(headers[AttemptHeader], out var attempt);
        var step = int.TryParse(headers[StepHeader], out var carried) ? carried : 1;
        var startedAt = DateTimeOffset.TryParse(headers[StartedAtHeader], CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var started) ? Clock.FromWall(started) : 0;
        _latest.AddOrUpdate(headers[GroupHeader].ToString(), at, (_, seen) => Math.Max(seen, at));
        _arrivals.Enqueue(new Arrival(at, headers[GroupHeader].ToString(), headers[MessageIdHeader].ToString(), headers[NodeHeader].ToString(), attempt, sentAt, step, newConnection, startedAt));
        if (_holding)
        {
            await Gate(group).Task;
        }

        if (group == ChainGroup && step < ChainSteps)
        {
            request.HttpContext.Response.Headers[ContinueHeader] = $"s{step}";
        }

        return Results.Ok();
    }

    // The node forwards the body but not the sender's headers, so the probe's send time travels in the body as {"t":ticks}.
    private static async Task<long> ReadSentAtAsync(HttpRequest request)
    {
        using var body = new MemoryStream();
        await request.Body.CopyToAsync(body);
        if (body.Length == 0)
        {
            return 0;
        }

        try
        {
            using var json = JsonDocument.Parse(body.ToArray());
            return json.RootElement.TryGetProperty("t", out var t) && t.TryGetInt64(out var ticks) ? ticks : 0;
        }
        catch (JsonException)
        {
            return 0;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var gate in _gates.Values)
        {
            gate.TrySetResult();
        }

        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}

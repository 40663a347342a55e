using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace ClusterQueue.Tests.Support;

/// <summary>One request the downstream received, with the time it arrived and the forwarded headers.</summary>
public sealed record DownstreamCall(
    DateTimeOffset ReceivedAt,
    string Path,
    string? MessageId,
    string? Group,
    int Attempt,
    string? ContentType,
    byte[] Body,
    string? Node = null,
    string? Cursor = null,
    int Step = 0,
    DateTimeOffset? StartedAt = null);

/// <summary>What the downstream answers: a status, an optional Retry-After, and how long it takes.</summary>
public sealed record DownstreamReply(int Status, TimeSpan? Delay = null, string? RetryAfter = null, string? Body = null, string? ContentType = null, string? Continue = null)
{
    public static DownstreamReply Ok { get; } = new(200);
}

/// <summary>
/// A real HTTP server on loopback standing in for a group's target: it records every call, tracks how many calls
/// are in flight at once per path, and answers however the test tells it to.
/// </summary>
public sealed class Downstream : IAsyncDisposable
{
    private WebApplication _app = null!;
    private readonly ConcurrentQueue<DownstreamCall> _calls = new();
    private readonly ConcurrentQueue<(DownstreamCall, DateTimeOffset)> _aborted = new();
    private readonly ConcurrentDictionary<string, int> _inFlight = new();
    private readonly ConcurrentDictionary<string, int> _maxInFlight = new();
    private int _inFlightOverall;
    private int _maxInFlightOverall;

    /// <summary>Decides the reply to each call; the default answers 200 at once.</summary>
    public Func<DownstreamCall, DownstreamReply> Reply { get; set; } = _ => DownstreamReply.Ok;

    public Uri BaseAddress { get; private set; } = null!;

    public IReadOnlyList<DownstreamCall> Calls => [.. _calls];

    /// <summary>Calls whose caller hung up while the reply was delayed, with when it did.</summary>
    public IReadOnlyList<(DownstreamCall Call, DateTimeOffset At)> Aborted => [.. _aborted];

    public IReadOnlyList<DownstreamCall> CallsTo(string path) => [.. _calls.Where(c => c.Path == path)];

    /// <summary>When each call to the path arrived, earliest first.</summary>
    public List<DateTimeOffset> Arrivals(string path) => [.. CallsTo(path).Select(c => c.ReceivedAt).Order()];

    /// <summary>When the node started each call to the path (its ClusterQueue-Started-At), in order.</summary>
    public List<DateTimeOffset> Starts(string path) =>
        [.. CallsTo(path).Select(c => c.StartedAt ?? throw new InvalidOperationException($"A call to {path} came without ClusterQueue-Started-At.")).Order()];

    public int MaxInFlight(string path) => _maxInFlight.GetValueOrDefault(path);

    /// <summary>The most calls in flight at once over all paths.</summary>
    public int MaxInFlightOverall => Volatile.Read(ref _maxInFlightOverall);

    public string Url(string path) => new Uri(BaseAddress, path).ToString();

    public static async Task<Downstream> StartAsync()
    {
        var downstream = new Downstream();
        (downstream._app, downstream.BaseAddress) = await LoopbackServer.StartAsync(downstream.HandleAsync);
        return downstream;
    }

    /// <summary>Waits until <paramref name="condition"/> holds, polling, or fails after <paramref name="timeout"/>.</summary>
    public async Task WaitUntilAsync(Func<Downstream, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition(this))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out after {timeout} waiting for: {what} (calls so far: {_calls.Count}).");
            }

            await Task.Delay(20);
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        var now = _inFlight.AddOrUpdate(path, 1, (_, n) => n + 1);
        _maxInFlight.AddOrUpdate(path, now, (_, max) => Math.Max(max, now));
        var overall = Interlocked.Increment(ref _inFlightOverall);
        for (var max = Volatile.Read(ref _maxInFlightOverall); overall > max; max = Volatile.Read(ref _maxInFlightOverall))
        {
            Interlocked.CompareExchange(ref _maxInFlightOverall, overall, max);
        }
        try
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            var call = new DownstreamCall(
                DateTimeOffset.UtcNow,
                path,
                context.Request.Headers["ClusterQueue-Message-Id"].ToString(),
                context.Request.Headers["ClusterQueue-Group"].ToString(),
                int.TryParse(context.Request.Headers["ClusterQueue-Attempt"].ToString(), out var attempt) ? attempt : 0,
                context.Request.ContentType,
                body.ToArray(),
                context.Request.Headers["ClusterQueue-Node"].ToString(),
                context.Request.Headers.TryGetValue("ClusterQueue-Cursor", out var cursor) ? cursor.ToString() : null,
                int.TryParse(context.Request.Headers["ClusterQueue-Step"].ToString(), out var step) ? step : 0,
                DateTimeOffset.TryParse(context.Request.Headers["ClusterQueue-Started-At"].ToString(), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var startedAt) ? startedAt : null);
            _calls.Enqueue(call);
            var reply = Reply(call);
            if (reply.Delay is { } delay)
            {
                try
                {
                    await Task.Delay(delay, context.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    // The caller gave up (its call was cancelled): note when, for tests of who stops when.
                    _aborted.Enqueue((call, DateTimeOffset.UtcNow));
                    return;
                }
            }

            context.Response.StatusCode = reply.Status;
            if (reply.RetryAfter is not null)
            {
                context.Response.Headers.RetryAfter = reply.RetryAfter;
            }

            if (reply.Continue is not null)
            {
                context.Response.Headers["ClusterQueue-Continue"] = reply.Continue;
            }

            if (reply.ContentType is not null)
            {
                context.Response.ContentType = reply.ContentType;
            }

            if (reply.Body is not null)
            {
                await context.Response.WriteAsync(reply.Body);
            }
        }
        finally
        {
            _inFlight.AddOrUpdate(path, 0, (_, n) => n - 1);
            Interlocked.Decrement(ref _inFlightOverall);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

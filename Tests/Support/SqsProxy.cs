using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// A loopback HTTP proxy in front of the SQS emulator that passes every call through, except that a test can make it
/// throttle one action (answering as SQS does when it asks a client to slow down) for a number of calls or until told
/// otherwise. It counts the calls of each action it saw, throttled or not.
/// </summary>
public sealed class SqsProxy : IAsyncDisposable
{
    private const string Throttled = """{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded"}""";

    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length", "Host",
    };

    private readonly HttpClient _upstream = new() { Timeout = TimeSpan.FromSeconds(60) };
    private readonly ConcurrentDictionary<string, int> _calls = new(StringComparer.Ordinal);
    private readonly Uri _target;
    private WebApplication _app = null!;
    private string? _throttledAction;
    private int _throttlesLeft;

    private SqsProxy(Uri target) => _target = target;

    public Uri Endpoint { get; private set; } = null!;

    public static async Task<SqsProxy> StartAsync(Uri target)
    {
        var proxy = new SqsProxy(target);
        (proxy._app, proxy.Endpoint) = await LoopbackServer.StartAsync(proxy.HandleAsync);
        return proxy;
    }

    /// <summary>Throttles the next <paramref name="calls"/> calls of <paramref name="action"/> (all of them when null).</summary>
    public void Throttle(string action, int? calls = null)
    {
        Volatile.Write(ref _throttlesLeft, calls ?? int.MaxValue);
        Volatile.Write(ref _throttledAction, action);
    }

    public void StopThrottling() => Volatile.Write(ref _throttledAction, null);

    public int Calls(string action) => _calls.GetValueOrDefault(action);

    private async Task HandleAsync(HttpContext context)
    {
        var target = context.Request.Headers["X-Amz-Target"].ToString();
        var action = target.StartsWith("AmazonSQS.", StringComparison.Ordinal) ? target["AmazonSQS.".Length..] : target;
        _calls.AddOrUpdate(action, 1, (_, n) => n + 1);
        if (Volatile.Read(ref _throttledAction) == action && Interlocked.Decrement(ref _throttlesLeft) >= 0)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            context.Response.ContentType = "application/x-amz-json-1.0";
            await context.Response.WriteAsync(Throttled);
            return;
        }

        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        using var forward = new HttpRequestMessage(new HttpMethod(context.Request.Method), new Uri(_target, context.Request.Path + context.Request.QueryString))
        {
            Content = new ByteArrayContent(body.ToArray()),
        };
        foreach (var (name, values) in context.Request.Headers)
        {
            if (!HopByHop.Contains(name) && !forward.Headers.TryAddWithoutValidation(name, values.ToArray()))
            {
                forward.Content.Headers.TryAddWithoutValidation(name, values.ToArray());
            }
        }

        using var answer = await _upstream.SendAsync(forward, context.RequestAborted);
        context.Response.StatusCode = (int)answer.StatusCode;
        foreach (var (name, values) in answer.Headers.Concat(answer.Content.Headers))
        {
            if (!HopByHop.Contains(name))
            {
                context.Response.Headers[name] = values.ToArray();
            }
        }

        await answer.Content.CopyToAsync(context.Response.Body);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _upstream.Dispose();
    }
}

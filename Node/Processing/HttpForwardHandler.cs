using System.Net;
using System.Net.Http.Headers;
using ClusterQueue.Node.Observability;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// The default handler: POSTs the original body and content type to the group's target URL, with headers naming
/// the message, the group and the attempt so the downstream can de-duplicate. 2xx is delivered; 429 or 503 with
/// Retry-After pauses the group; anything else (status, connection error) is a failed attempt. Redirects are never
/// followed: a 3xx is a failed attempt that names its Location.
/// </summary>
public sealed class HttpForwardHandler(HttpClient client, TimeProvider time, string nodeId, int maxResultBytes = 1024 * 1024, NodeMetrics? metrics = null) : IMessageHandler
{
    public const string HttpClientName = "forward";
    public const string MessageIdHeader = "ClusterQueue-Message-Id";
    public const string GroupHeader = "ClusterQueue-Group";
    public const string AttemptHeader = "ClusterQueue-Attempt";

    /// <summary>A downstream's answer header asking for another step of a long job; its value is the cursor.</summary>
    public const string ContinueHeader = "ClusterQueue-Continue";

    /// <summary>On a continued message's calls: the step (1-based) and the cursor the previous step returned.</summary>
    public const string StepHeader = "ClusterQueue-Step";

    public const string CursorHeader = "ClusterQueue-Cursor";

    /// <summary>A cursor is a position, not a payload: it travels in a header on every call and is kept with every step.</summary>
    public const int MaxCursorLength = 1024;

    /// <summary>Which node made the call: in a cluster, where to look for its logs.</summary>
    public const string NodeHeader = "ClusterQueue-Node";

    /// <summary>
    /// When the node started the call (its group's bucket gave it a token), RFC 3339 in UTC to the 100 ns: the
    /// downstream can tell the node's pacing from the network's, and see how long a call took to reach it.
    /// </summary>
    public const string StartedAtHeader = "ClusterQueue-Started-At";

    /// <summary>Enough of a redirect's Location to see where the target pointed.</summary>
    private const int MaxLocationLength = 512;

    /// <summary>Enough of an error body to diagnose from the dead-letter list without storing whole pages.</summary>
    private const int ErrorBodyBytes = 256;

    /// <summary>
    /// One call, as a delivery span (see <see cref="MessageTracing"/>) and timed by outcome. The target receives the
    /// trace context: HttpClient's own instrumentation sends the call's when the span is recorded, else the one kept
    /// with the message is sent as it is.
    /// </summary>
    public async Task<HandlerOutcome> HandleAsync(Delivery delivery, CancellationToken cancellationToken)
    {
        using var span = MessageTracing.StartDelivery(delivery);
        var started = time.GetTimestamp();
        HandlerOutcome? result = null;
        try
        {
            return result = await ForwardAsync(delivery, span is null ? delivery.Message.TraceParent : null, cancellationToken);
        }
        finally
        {
            var outcome = result is null ? MessageTracing.Cancelled : MessageTracing.OutcomeName(result);
            MessageTracing.Delivered(span, outcome, result);
            metrics?.HandlerCall(time.GetElapsedTime(started), outcome);
        }
    }

    private async Task<HandlerOutcome> ForwardAsync(Delivery delivery, string? traceParent, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, delivery.Group.TargetUrl);
        request.Content = new ByteArrayContent(delivery.Message.Body);
        if (delivery.Message.ContentType is { } contentType)
        {
            // Unparsed: parsing would re-format a valid value ("a/b;x=1" becomes "a/b; x=1") and drop one it cannot read.
            request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }

        request.Headers.TryAddWithoutValidation(MessageIdHeader, delivery.Message.Id);
        request.Headers.TryAddWithoutValidation(GroupHeader, delivery.Group.Id);
        request.Headers.TryAddWithoutValidation(AttemptHeader, delivery.Attempt.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.TryAddWithoutValidation(NodeHeader, nodeId);
        request.Headers.TryAddWithoutValidation(StartedAtHeader, delivery.StartedAt.UtcDateTime.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        if (traceParent is not null)
        {
            request.Headers.TryAddWithoutValidation(MessageTracing.TraceParentHeader, traceParent);
        }

        if (delivery.Message.Cursor is { } cursor)
        {
            request.Headers.TryAddWithoutValidation(StepHeader, delivery.Message.Step.ToString(System.Globalization.CultureInfo.InvariantCulture));
            request.Headers.TryAddWithoutValidation(CursorHeader, cursor);
        }

        var target = request.RequestUri;
        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            return new HandlerOutcome.Failed($"connection failed: {ex.Message}");
        }

        using (response)
        {
            if (request.RequestUri != target)
            {
                // A client that follows redirects (not the node's own) moved the call: what answered is not the target.
                return new HandlerOutcome.Failed($"redirected to {request.RequestUri} and followed; the target must answer itself", (int)response.StatusCode);
            }

            if (response.IsSuccessStatusCode && response.Headers.TryGetValues(ContinueHeader, out var continues))
            {
                var next = string.Join(",", continues);
                return IsValidCursor(next)
                    ? new HandlerOutcome.Continue(next, (int)response.StatusCode)
                    : new HandlerOutcome.Failed($"invalid {ContinueHeader} header: a cursor is 1 to {MaxCursorLength} visible ASCII characters", (int)response.StatusCode);
            }

            if (response.IsSuccessStatusCode)
            {
                return delivery.Message.WantsResult
                    ? new HandlerOutcome.Delivered(await ReadResultAsync(response, cancellationToken))
                    : HandlerOutcome.Success;
            }

            var status = (int)response.StatusCode;
            if (status is >= 300 and < 400)
            {
                // Never followed: a 302/303 would be a bodyless GET elsewhere that "delivers" nothing, a 307/308 would send
                // the body and our headers to a host nobody configured, and a waiting sender would get that host's answer.
                return new HandlerOutcome.Failed($"HTTP {status}: redirect to {Location(response)} not followed; the target must answer itself", status);
            }

            var error = $"HTTP {status}: {await ReadErrorAsync(response, cancellationToken)}";
            if (response.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable
                && RetryAfter(response.Headers.RetryAfter) is { } retryAfter)
            {
                return new HandlerOutcome.Throttled(retryAfter, error, status);
            }

            return new HandlerOutcome.Failed(error, status);
        }
    }

    /// <summary>The redirect's Location as sent (relative or absolute), cut short: it goes into the attempt history.</summary>
    private static string Location(HttpResponseMessage response)
    {
        if (response.Headers.Location is not { } location)
        {
            return "(no Location)";
        }

        var text = location.OriginalString;
        return text.Length <= MaxLocationLength ? text : string.Concat(text.AsSpan(0, MaxLocationLength), "…");
    }

    private static bool IsValidCursor(string cursor) =>
        cursor.Length is > 0 and <= MaxCursorLength && cursor.All(c => c is >= '!' and <= '~');

    private TimeSpan? RetryAfter(RetryConditionHeaderValue? header)
    {
        if (header?.Delta is { } delta)
        {
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        }

        if (header?.Date is { } date)
        {
            var wait = date - time.GetUtcNow();
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }

        return null;
    }

    /// <summary>The answer a waiting sender gets; a body over <c>Ingress:MaxResultBytes</c> is left out.</summary>
    private async Task<Queueing.DeliveryResult> ReadResultAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var contentType = response.Content.Headers.TryGetValues("Content-Type", out var values) ? string.Join(", ", values) : null;
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var body = new MemoryStream();
        var buffer = new byte[81920];
        int n;
        while ((n = await stream.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (body.Length + n > maxResultBytes)
            {
                return new Queueing.DeliveryResult((int)response.StatusCode, contentType, null);
            }

            body.Write(buffer, 0, n);
        }

        return new Queueing.DeliveryResult((int)response.StatusCode, contentType, body.ToArray());
    }

    private static async Task<string> ReadErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            // Read only the first bytes: an error page can be megabytes, and only its start helps a diagnosis.
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            var buffer = new byte[ErrorBodyBytes];
            var read = 0;
            int n;
            while (read < buffer.Length && (n = await stream.ReadAsync(buffer.AsMemory(read), cancellationToken)) > 0)
            {
                read += n;
            }

            return System.Text.Encoding.UTF8.GetString(buffer, 0, read);
        }
        catch (HttpRequestException)
        {
            return "(body unreadable)";
        }
    }
}

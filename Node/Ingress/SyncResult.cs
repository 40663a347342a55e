using ClusterQueue.Contracts;
using ClusterQueue.Node.Queueing;

namespace ClusterQueue.Node.Ingress;

/// <summary>Synchronous mode (<c>POST /hooks/{id}?wait=</c>): waiting for a message's final outcome, and the answer made of it.</summary>
public static class SyncResult
{
    /// <summary>The header naming the message on a synchronous answer, which carries the downstream's own body: the name the target saw it under.</summary>
    public const string MessageIdHeader = Processing.HttpForwardHandler.MessageIdHeader;

    // Only against an announcement lost on its way (a listener reconnecting): a re-read this often costs nothing.
    private static readonly TimeSpan SafetyRead = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The message's status once it is delivered or dead; null when <paramref name="wait"/> ran out first, the sender
    /// left, or the message is gone (purged, its group deleted).
    /// </summary>
    public static async Task<MessageStatus?> WaitAsync(string messageId, TimeSpan wait, IMessageQueue queue, OutcomeWaiters outcomes, TimeProvider time, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + wait;
        try
        {
            while (true)
            {
                // Registered before the read: an outcome recorded between the two still wakes this loop.
                var next = outcomes.Next(messageId);
                try
                {
                    var status = await queue.GetStatusAsync(messageId, cancellationToken);
                    if (status is { State: "delivered" or "dead" })
                    {
                        return status;
                    }

                    if (status is null)
                    {
                        // Purged, or its group deleted: no outcome will come.
                        return null;
                    }

                    var left = deadline - time.GetUtcNow();
                    if (left <= TimeSpan.Zero)
                    {
                        return null;
                    }

                    await Task.WhenAny(next, Task.Delay(left < SafetyRead ? left : SafetyRead, time, cancellationToken));
                    cancellationToken.ThrowIfCancellationRequested();
                }
                finally
                {
                    outcomes.Leave(messageId, next);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The sender left; the message is durable and carries on without it.
            return null;
        }
    }

    /// <summary>
    /// Delivered: the downstream's status, content type and body (a body over Ingress:MaxResultBytes was not kept: its
    /// status with an empty body; a message whose result nobody asked for when it was ingested: its status JSON).
    /// Dead: 502, naming the downstream's status on the last attempt when it answered.
    /// </summary>
    public static IResult Answer(MessageStatus status, HttpResponse response)
    {
        response.Headers[MessageIdHeader] = status.MessageId;
        if (status.State == "dead")
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status502BadGateway,
                title: "The message was dead-lettered",
                detail: status.LastError,
                extensions: new Dictionary<string, object?>
                {
                    ["messageId"] = status.MessageId,
                    ["attempts"] = status.Attempts,
                    ["lastError"] = status.LastError,
                    // The dead attempt is the newest in the history; null when the downstream never answered it.
                    ["downstreamStatus"] = status.AttemptHistory is [.., var last] ? last.Status : null,
                });
        }

        if (status.Result is not { } result)
        {
            return TypedResults.Ok(status);
        }

        var body = result.Body is { } text ? System.Text.Encoding.UTF8.GetBytes(text)
            : result.BodyBase64 is { } encoded ? Convert.FromBase64String(encoded)
            : [];
        return new DownstreamAnswer(result.Status, result.ContentType, body);
    }

    /// <summary>The downstream's answer as it was: its status code, content type and body.</summary>
    private sealed class DownstreamAnswer(int status, string? contentType, byte[] body) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = status;
            if (contentType is not null)
            {
                httpContext.Response.ContentType = contentType;
            }

            // 204, 205 and 304 carry no body by definition (RFC 9110 15.3.5, 15.3.6, 15.4.5), and Kestrel refuses to
            // write one; a target that sent one anyway has it dropped here rather than failing the answer.
            if (body.Length > 0 && status is not (StatusCodes.Status204NoContent or StatusCodes.Status205ResetContent or StatusCodes.Status304NotModified))
            {
                httpContext.Response.ContentLength = body.Length;
                await httpContext.Response.Body.WriteAsync(body);
            }
        }
    }
}

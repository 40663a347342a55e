using System.Diagnostics;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Queueing;

namespace ClusterQueue.Node.Observability;

/// <summary>
/// The node's spans, on one <see cref="ActivitySource"/> named ClusterQueue: an ingest span for each accepted request,
/// and a delivery span for each handler call (one attempt at one step).
/// <code>
///   sender ──traceparent──▶ POST /hooks/{id} (ASP.NET Core) ─▶ ingest ─ kept with the message (traceparent column / SQS attribute)
///                                                                  ╎ parent and link
///                                    deliver (attempt 1) ─▶ HTTP POST ──traceparent──▶ target
///                                    deliver (attempt 2) ─▶ HTTP POST ──traceparent──▶ target
/// </code>
/// The context kept is the ingest span's, so every attempt, on whichever node and however much later, continues the
/// sender's trace. With traces off nothing listens, so starting a span costs one check and returns null; the sender's
/// own traceparent is still kept and passed to the target, whose spans then join the sender's trace directly.
/// </summary>
public static class MessageTracing
{
    public const string SourceName = "ClusterQueue";

    public const string TraceParentHeader = "traceparent";

    private static readonly ActivitySource Source = new(SourceName);

    /// <summary>The span of one ingest request, a child of the request's own span; null when traces are off.</summary>
    public static Activity? StartIngest(string groupId)
    {
        var span = Source.StartActivity("ingest", ActivityKind.Producer);
        if (span is { IsAllDataRequested: true })
        {
            span.SetTag("messaging.system", "clusterqueue");
            span.SetTag("messaging.operation.type", "send");
            span.SetTag("messaging.destination.name", groupId);
        }

        return span;
    }

    /// <summary>
    /// The context to keep with a new message: the ingest span's, or with traces off the sender's own traceparent when it
    /// is well formed (the ambient request span is never kept: with traces off nobody records it, so it would be a
    /// parent no trace contains).
    /// </summary>
    public static string? ContextToKeep(Activity? ingest, HttpRequest request)
    {
        if (ingest is not null)
        {
            return ingest.Id;
        }

        return request.Headers[TraceParentHeader] is [{ } sent] && ActivityContext.TryParse(sent, null, isRemote: true, out var context)
            ? Format(context)
            : null;
    }

    /// <summary>What became of the ingest: the message's id and whether it was new, a duplicate or refused.</summary>
    public static void Ingested(Activity? ingest, EnqueueResult result)
    {
        if (ingest is { IsAllDataRequested: true })
        {
            ingest.SetTag("messaging.message.id", result.MessageId);
            ingest.SetTag("clusterqueue.outcome", result.Outcome switch
            {
                EnqueueOutcome.Accepted => "accepted",
                EnqueueOutcome.Duplicate => "duplicate",
                EnqueueOutcome.Busy => "busy",
                _ => "group_not_found",
            });
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> outside the current span: an actor started by a request would otherwise carry
    /// that request's context into every call it makes for the rest of its life.
    /// </summary>
    public static void Detached<TState>(Action<TState> action, TState state)
    {
        var current = Activity.Current;
        if (current is null)
        {
            action(state);
            return;
        }

        Activity.Current = null;
        try
        {
            action(state);
        }
        finally
        {
            Activity.Current = current;
        }
    }

    /// <summary>
    /// The span of one handler call: a child of the context kept with the message (and linked to it, as messaging
    /// conventions ask of a consumer), or a new trace when none was kept. Whatever span is current is not its parent:
    /// that is whichever request happened to start the group's actor.
    /// </summary>
    public static Activity? StartDelivery(Delivery delivery)
    {
        Activity.Current = null;
        var parent = delivery.Message.TraceParent is { } kept && ActivityContext.TryParse(kept, null, isRemote: true, out var context) ? context : default;
        var span = Source.StartActivity(
            "deliver",
            ActivityKind.Consumer,
            parent,
            tags: null,
            links: parent == default ? null : [new ActivityLink(parent)]);
        if (span is { IsAllDataRequested: true })
        {
            span.SetTag("messaging.system", "clusterqueue");
            span.SetTag("messaging.operation.type", "process");
            span.SetTag("messaging.destination.name", delivery.Group.Id);
            span.SetTag("messaging.message.id", delivery.Message.Id);
            span.SetTag("clusterqueue.attempt", delivery.Attempt);
            span.SetTag("clusterqueue.step", delivery.Message.Step);
        }

        return span;
    }

    /// <summary>The outcome's name, as the span's clusterqueue.outcome and the handler duration's outcome label.</summary>
    public static string OutcomeName(HandlerOutcome outcome) => outcome switch
    {
        HandlerOutcome.Delivered => "delivered",
        HandlerOutcome.Continue => "continued",
        HandlerOutcome.Throttled => "throttled",
        HandlerOutcome.Dead => "dead",
        _ => "failed",
    };

    /// <summary>A call cut short, by the group's handler timeout or by shutdown.</summary>
    public const string Cancelled = "cancelled";

    public static void Delivered(Activity? span, string outcome, HandlerOutcome? result)
    {
        if (span is not { IsAllDataRequested: true })
        {
            return;
        }

        span.SetTag("clusterqueue.outcome", outcome);
        var status = result switch
        {
            HandlerOutcome.Failed failed => failed.Status,
            HandlerOutcome.Throttled throttled => throttled.Status,
            HandlerOutcome.Continue next => next.Status,
            _ => null,
        };
        if (status is { } code)
        {
            span.SetTag("http.response.status_code", code);
        }

        switch (result)
        {
            case HandlerOutcome.Failed failed:
                span.SetStatus(ActivityStatusCode.Error, failed.Error);
                break;
            case HandlerOutcome.Dead dead:
                span.SetStatus(ActivityStatusCode.Error, dead.Reason);
                break;
            case null:
                span.SetStatus(ActivityStatusCode.Error, "the call was cut short (handler timeout or shutdown)");
                break;
        }
    }

    private static string Format(ActivityContext context) =>
        $"00-{context.TraceId.ToHexString()}-{context.SpanId.ToHexString()}-{((context.TraceFlags & ActivityTraceFlags.Recorded) != 0 ? "01" : "00")}";
}

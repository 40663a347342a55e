using ClusterQueue.Contracts;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Ingress.Verification;
using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Queueing;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Ingress;

/// <summary>
/// POST /hooks/{id}: find the group, read the body within its size limit, check the sender's signature, de-duplicate
/// by the sender's delivery id, make the message durable, and only then answer 202. Every refusal stores nothing.
/// </summary>
public static class IngressEndpoints
{
    // Seconds a sender refused for a full upload buffer waits: uploads in progress end within seconds, or Kestrel's
    // minimum data rate cuts them after its 5 s grace; sooner would most likely meet the same full buffer.
    private const string UploadsFullRetryAfter = "5";

    public static IServiceCollection AddIngress(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<IngressOptions>().Bind(configuration.GetSection(IngressOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<SignatureVerifier>();
        services.AddSingleton<OutcomeWaiters>();
        services.AddSingleton<UploadBudget>();
        return services;
    }

    public static IEndpointRouteBuilder MapIngress(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/hooks/{id}", IngestAsync)
            .WithTags("Ingress")
            .WithSummary("Ingest one message for the group; 202 once it is durable.")
            .WithDescription("The body is stored as sent, with its content type; a body over the group's maxPayloadBytes (body bytes, not chunk framing) is 413, and 503 with Retry-After means the node's buffer for bodies being received (Ingress:MaxBufferedBytes) is full. A delivery id header (webhook-id, svix-id, X-GitHub-Delivery, X-Shopify-Webhook-Id, Idempotency-Key) de-duplicates retries. A delayed message: ?delay=<seconds> or ?notBefore=<RFC 3339 time>, or the headers ClusterQueue-Delay / ClusterQueue-Not-Before (one of the four); it is durable at once and processed when due, under the group's rate (at most Ingress:MaxDelay ahead, 7 days by default). Synchronous mode: ?wait=<seconds> (cut to Ingress:MaxWait, 30 s by default) answers with the downstream's status, content type and body once the message is delivered, 502 with problem details if it is dead-lettered (messageId, attempts, lastError and downstreamStatus, the target's status on the last attempt), or 202 with Location: /v1/messages/{id} if the wait runs out first; the message is durable before the wait starts. Long jobs: a target that answers 2xx with ClusterQueue-Continue: <cursor> has the message queued again with that cursor (sent as ClusterQueue-Cursor with ClusterQueue-Step), up to the group's maxSteps; a wait lasts until the chain ends.")
            .Accepts<byte[]>("application/octet-stream", "application/json", "*/*")
            .Produces<IngestAccepted>(StatusCodes.Status202Accepted)
            .Produces(StatusCodes.Status200OK)
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status408RequestTimeout)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status502BadGateway)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return endpoints;
    }

    private static async Task<IResult> IngestAsync(
        string id,
        HttpRequest request,
        GroupRegistry registry,
        IMessageQueue queue,
        GroupDispatcher dispatcher,
        SignatureVerifier verifier,
        NodeMetrics metrics,
        OutcomeWaiters outcomes,
        UploadBudget uploads,
        IOptions<IngressOptions> options,
        TimeProvider time,
        ILoggerFactory loggers,
        CancellationToken cancellationToken)
    {
        using var span = MessageTracing.StartIngest(id);
        if (await registry.FindAsync(id, cancellationToken) is not { } group)
        {
            metrics.Rejected("unknown_group");
            return GroupProblems.NotFound(id);
        }

        var now = time.GetUtcNow();
        var schedule = MessageSchedule.Read(request, now, options.Value.MaxDelay);
        if (schedule.Field is { } field)
        {
            metrics.Rejected("schedule");
            return GroupProblems.Invalid(field, schedule.Error!);
        }

        TimeSpan? wait = null;
        if (request.Query.TryGetValue("wait", out var waitValue))
        {
            if (!MessageSchedule.TryParseSeconds(waitValue.ToString(), out var seconds) || seconds < MessageSchedule.MinimumSeconds)
            {
                metrics.Rejected("wait");
                return GroupProblems.Invalid("wait", $"wait must be a number of seconds of at least {MessageSchedule.MinimumSeconds} (1 ms), such as 10 or 2.5.");
            }

            wait = TimeSpan.FromSeconds(Math.Min(seconds, options.Value.MaxWait.TotalSeconds));
        }

        // Disposed once the message is stored (below), or by this using on any other way out: the body's bytes count
        // against the node's upload budget until then.
        using var read = await RequestBody.ReadAsync(request, group.MaxPayloadBytes, uploads, cancellationToken);
        switch (read.Outcome)
        {
            case BodyReadOutcome.TooLarge:
                metrics.Rejected("too_large");
                return TypedResults.Problem(
                    statusCode: StatusCodes.Status413PayloadTooLarge,
                    title: "Payload too large",
                    detail: $"Group '{id}' accepts bodies of at most {group.MaxPayloadBytes} bytes.");
            case BodyReadOutcome.NoRoom:
                metrics.Rejected("uploads_full");
                if (uploads.ShouldWarn(now))
                {
                    Log.UploadsFull(loggers.CreateLogger(Log.Category), id, uploads.Held, uploads.Limit);
                }

                request.HttpContext.Response.Headers.RetryAfter = UploadsFullRetryAfter;
                return TypedResults.Problem(
                    statusCode: StatusCodes.Status503ServiceUnavailable,
                    title: "Too many uploads in progress",
                    detail: $"This node is receiving as many request bodies as it buffers at once; retry in {UploadsFullRetryAfter} s.");
            case BodyReadOutcome.Cut:
                metrics.Rejected("body_cut");
                Log.UploadCut(loggers.CreateLogger(Log.Category), id, read.Received, read.CutReason!);
                return TypedResults.Problem(statusCode: read.CutStatus, title: "Incomplete request body", detail: read.CutReason);
        }

        var body = read.Bytes;

        if (group.Scheme is { } scheme)
        {
            var check = verifier.Verify(scheme, group.Secret ?? string.Empty, request.Headers, body, now, options.Value.SignatureTolerance);
            if (check != SignatureCheck.Valid)
            {
                metrics.Rejected("signature");
                return TypedResults.Problem(
                    statusCode: StatusCodes.Status401Unauthorized,
                    title: "Signature verification failed",
                    detail: check switch
                    {
                        SignatureCheck.Missing => $"The {VerificationSchemes.ToWire(scheme)} signature headers are missing.",
                        SignatureCheck.OutsideTolerance => "The signature timestamp is outside the accepted tolerance.",
                        _ => $"The {VerificationSchemes.ToWire(scheme)} signature does not match the body.",
                    });
            }
        }

        var (deliveryId, source, idError) = DeliveryId.Find(request.Headers, group.Scheme, body);
        if (idError is not null)
        {
            metrics.Rejected("delivery_id");
            return GroupProblems.Invalid(source!, idError);
        }

        var message = new NewMessage(
            Guid.CreateVersion7(now).ToString(),
            id,
            request.ContentType,
            body,
            deliveryId,
            now + options.Value.DeduplicationWindow,
            schedule.NotBefore,
            WantsResult: wait is not null)
        {
            TraceParent = MessageTracing.ContextToKeep(span, request),
        };

        // Once queued, the write may commit whatever the caller does; the wake-up below must follow it regardless.
        var result = await queue.EnqueueAsync(message, CancellationToken.None);
        read.Dispose();
        MessageTracing.Ingested(span, result);
        switch (result.Outcome)
        {
            case EnqueueOutcome.GroupNotFound:
                metrics.Rejected("unknown_group");
                return GroupProblems.NotFound(id);
            case EnqueueOutcome.Busy:
                // The first request with this delivery id is still waiting for SQS; answering "duplicate" now would be a
                // lie if that send then fails, so the sender retries and gets the real outcome.
                metrics.Rejected("delivery_in_progress");
                request.HttpContext.Response.Headers.RetryAfter = "1";
                return TypedResults.Problem(
                    statusCode: StatusCodes.Status503ServiceUnavailable,
                    title: "Delivery in progress",
                    detail: $"An earlier request with delivery id '{deliveryId}' is still being accepted; retry shortly.");
            case EnqueueOutcome.Duplicate:
                metrics.Duplicate(id);
                break;
            default:
                metrics.Ingested(id);
                MessageTracing.Detached(static wake => wake.dispatcher.Notify(wake.id), (dispatcher, id));
                break;
        }

        var accepted = TypedResults.Accepted($"/v1/messages/{result.MessageId}", new IngestAccepted(result.MessageId, result.Outcome == EnqueueOutcome.Duplicate));
        if (wait is not { } waitFor)
        {
            return accepted;
        }

        // Durable already: a sender that drops the connection now loses nothing, it only stops waiting.
        return await SyncResult.WaitAsync(result.MessageId, waitFor, queue, outcomes, time, cancellationToken) is { } outcome
            ? SyncResult.Answer(outcome, request.HttpContext.Response)
            : accepted;
    }
}

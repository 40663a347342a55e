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
    public static IServiceCollection AddIngress(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<IngressOptions>().Bind(configuration.GetSection(IngressOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<SignatureVerifier>();
        return services;
    }

    public static IEndpointRouteBuilder MapIngress(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/hooks/{id}", IngestAsync)
            .WithTags("Ingress")
            .WithSummary("Ingest one message for the group; 202 once it is durable.")
            .WithDescription("The body is stored as sent, with its content type. A delivery id header (webhook-id, svix-id, X-GitHub-Delivery, X-Shopify-Webhook-Id, Idempotency-Key) de-duplicates retries. A delayed message: ?delay=<seconds> or ?notBefore=<RFC 3339 time>, or the headers ClusterQueue-Delay / ClusterQueue-Not-Before (one of the four); it is durable at once and processed when due, under the group's rate (at most Ingress:MaxDelay ahead, 7 days by default).")
            .Accepts<byte[]>("application/octet-stream", "application/json", "*/*");
        return endpoints;
    }

    private static async Task<Results<Accepted<IngestAccepted>, ValidationProblem, ProblemHttpResult>> IngestAsync(
        string id,
        HttpRequest request,
        GroupRegistry registry,
        IMessageQueue queue,
        GroupDispatcher dispatcher,
        SignatureVerifier verifier,
        NodeMetrics metrics,
        IOptions<IngressOptions> options,
        TimeProvider time,
        CancellationToken cancellationToken)
    {
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
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [schedule.Error!] });
        }

        var body = await RequestBody.ReadAsync(request, group.MaxPayloadBytes, cancellationToken);
        if (body is null)
        {
            metrics.Rejected("too_large");
            return TypedResults.Problem(
                statusCode: StatusCodes.Status413PayloadTooLarge,
                title: "Payload too large",
                detail: $"Group '{id}' accepts bodies of at most {group.MaxPayloadBytes} bytes.");
        }

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

        var (deliveryId, source) = DeliveryId.Find(request.Headers, group.Scheme, body);
        if (deliveryId is { Length: > DeliveryId.MaxLength })
        {
            metrics.Rejected("delivery_id");
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { [source!] = [$"{source} must be at most {DeliveryId.MaxLength} characters."] });
        }

        var message = new NewMessage(
            Guid.CreateVersion7(now).ToString(),
            id,
            request.ContentType,
            body,
            deliveryId,
            now + options.Value.DeduplicationWindow,
            schedule.NotBefore);

        // Once queued, the write may commit whatever the caller does; the wake-up below must follow it regardless.
        var result = await queue.EnqueueAsync(message, CancellationToken.None);
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
                dispatcher.Notify(id);
                break;
        }

        return TypedResults.Accepted($"/v1/messages/{result.MessageId}", new IngestAccepted(result.MessageId, result.Outcome == EnqueueOutcome.Duplicate));
    }
}

using ClusterQueue.Contracts;
using ClusterQueue.Node.Admin;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Queueing.Sqs;
using ClusterQueue.Node.Storage;
using Microsoft.AspNetCore.Http.HttpResults;

namespace ClusterQueue.Node.Queueing;

public static class QueueEndpoints
{
    private const int MaxPageSize = 1000;

    /// <summary>A redrive by id names at most this many messages; larger sets are redriven whole (no ids).</summary>
    private const int MaxRedriveIds = 10_000;

    public static IServiceCollection AddQueueing(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<QueueOptions>().Bind(configuration.GetSection(QueueOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<MessageRecords>();
        if (string.Equals(configuration[$"{StorageOptions.Section}:{nameof(StorageOptions.Queue)}"], "sqs", StringComparison.Ordinal))
        {
            services.AddSqsQueue(configuration);
        }
        else
        {
            services.AddSingleton<IMessageQueue, SqlMessageQueue>();
        }

        services.AddExceptionHandler<QueueUnavailableHandler>();
        services.AddHostedService<QueuePurger>();
        return services;
    }

    public static RouteGroupBuilder MapQueueing(this RouteGroupBuilder admin)
    {
        admin.MapGet("/groups/{id}/dead-letters", ListDeadLettersAsync).WithPageSize(MaxPageSize).WithTags("Dead letters").WithSummary("Dead letters of a group, oldest first; page with ?after= and ?limit=.")
            .WithDescription("Each dead letter carries attemptHistory: every attempt that did not deliver it, oldest first (the 100 newest are kept), as {attempt, step, startedAt, durationMs, status, error, outcome}; step is the step of a long job the attempt was for (1 for a message that never continued), and each step counts its attempts from 1; status is the target's HTTP status, null for a connection error or timeout; outcome is failed, throttled or dead. A redriven message keeps its history, and its next attempts (from 1 again) follow. Dead letters are kept for Queueing:DeadLetterRetention (14 days by default).");
        admin.MapPost("/groups/{id}/dead-letters/redrive", RedriveAsync).WithJsonBody<RedriveRequest>(required: false).WithTags("Dead letters")
            .WithSummary("Send dead letters back to the queue: all of them, those named in messageIds, or those that died in [deadAfter, deadBefore). They are processed under the group's rate like any backlog.")
            .WithDescription("No body or {} takes all of the group's dead letters; {\"messageIds\": [...]} those named (at most 10,000); {\"deadAfter\", \"deadBefore\"} (RFC 3339, either or both) those that died in that range. Ids together with a time range, or deadBefore not after deadAfter, are 400 naming the field. Answers {\"redriven\": n}. Attempts restart at 1.");
        admin.MapPost("/groups/{id}/dead-letters/purge", PurgeDeadLettersAsync).WithJsonBody<RedriveRequest>(required: false).WithTags("Dead letters")
            .WithSummary("Delete dead letters for good, with the same selections as redrive; ?confirm= must repeat the group id.")
            .WithDescription("A missing or different confirm is 400 naming confirm, and nothing is deleted. Offloaded bodies (the SQS queue's payload store) and attempt histories go too. Answers {\"purged\": n}.");
        admin.MapPost("/groups/{id}/purge", PurgeAsync).WithTags("Groups")
            .WithSummary("Delete the group's queued messages; ?confirm= must repeat the group id. Messages in a handler call finish as usual (on the SQS queue, SQS's purge takes them too).");
        admin.MapGet("/messages/{messageId}", StatusAsync).WithTags("Messages").WithSummary("Status of one message: queued, processing, delivered or dead.")
            .WithDescription("result: the downstream's status, content type and body, kept for a message sent with ?wait= once it is delivered (also after the wait ran out). step and cursor: the continuation step to run next and the cursor it will carry; steps: each finished step with the cursor its answer returned (ClusterQueue-Continue), its status and when it ended. attemptHistory lists the attempts that did not deliver the message, as in the dead-letter list.");
        return admin;
    }

    private static async Task<Results<Ok<DeadLetterList>, ValidationProblem, ProblemHttpResult>> ListDeadLettersAsync(
        string id, string? after, string? limit, GroupRegistry registry, IMessageQueue queue, CancellationToken cancellationToken)
    {
        if (await registry.FindAsync(id, cancellationToken) is null)
        {
            return GroupProblems.NotFound(id);
        }

        var (size, invalid) = AdminQuery.PageSize(limit, MaxPageSize);
        if (invalid is not null)
        {
            return invalid;
        }

        return TypedResults.Ok(await queue.ListDeadLettersAsync(id, after, size, cancellationToken));
    }

    private static async Task<Results<Ok<RedriveResult>, ValidationProblem, ProblemHttpResult>> RedriveAsync(
        string id, HttpRequest request, GroupRegistry registry, IMessageQueue queue, GroupDispatcher dispatcher, ILogger<RedriveRequest> logger, CancellationToken cancellationToken)
    {
        if (await registry.FindAsync(id, cancellationToken) is null)
        {
            return GroupProblems.NotFound(id);
        }

        var (selection, invalid) = await ReadSelectionAsync(request, cancellationToken);
        if (selection is null)
        {
            return invalid!;
        }

        var count = await queue.RedriveAsync(id, selection, CancellationToken.None);
        if (count > 0)
        {
            Log.Redriven(logger, count, id);
            dispatcher.Notify(id);
        }

        return TypedResults.Ok(new RedriveResult(count));
    }

    private static async Task<Results<Ok<PurgeResult>, ValidationProblem, ProblemHttpResult>> PurgeDeadLettersAsync(
        string id, string? confirm, HttpRequest request, GroupRegistry registry, IMessageQueue queue, CancellationToken cancellationToken)
    {
        if (await registry.FindAsync(id, cancellationToken) is null)
        {
            return GroupProblems.NotFound(id);
        }

        if (Unconfirmed(id, confirm, "dead letters") is { } unconfirmed)
        {
            return unconfirmed;
        }

        var (selection, invalid) = await ReadSelectionAsync(request, cancellationToken);
        if (selection is null)
        {
            return invalid!;
        }

        return TypedResults.Ok(new PurgeResult(await queue.PurgeDeadLettersAsync(id, selection, CancellationToken.None)));
    }

    /// <summary>The dead letters a request body selects (no body: all); 400 naming the field when it makes no sense.</summary>
    private static async Task<(DeadLetterSelection? Selection, ValidationProblem? Error)> ReadSelectionAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var wanted = new RedriveRequest();
        if (request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0)
        {
            var (body, error) = await GroupEndpoints.ReadBodyAsync<RedriveRequest>(request, cancellationToken);
            if (body is null)
            {
                return (null, error);
            }

            wanted = body;
        }

        static (DeadLetterSelection?, ValidationProblem?) Invalid(string field, string why) =>
            (null, GroupProblems.Invalid(field, why));

        if (wanted.MessageIds is { Count: > MaxRedriveIds })
        {
            return Invalid("messageIds", $"messageIds names at most {MaxRedriveIds} messages; select by time, or omit it for all.");
        }

        if (wanted.MessageIds is not null && (wanted.DeadAfter is not null || wanted.DeadBefore is not null))
        {
            return Invalid("messageIds", "Select by messageIds or by deadAfter/deadBefore, not both.");
        }

        if (wanted.DeadAfter is { } after && wanted.DeadBefore is { } before && before <= after)
        {
            return Invalid("deadBefore", "deadBefore must be later than deadAfter.");
        }

        return (new DeadLetterSelection(wanted.MessageIds, wanted.DeadAfter, wanted.DeadBefore), null);
    }

    private static async Task<Results<Ok<PurgeResult>, ValidationProblem, ProblemHttpResult>> PurgeAsync(
        string id, string? confirm, GroupRegistry registry, IMessageQueue queue, CancellationToken cancellationToken)
    {
        if (await registry.FindAsync(id, cancellationToken) is null)
        {
            return GroupProblems.NotFound(id);
        }

        if (Unconfirmed(id, confirm, "the queued messages") is { } unconfirmed)
        {
            return unconfirmed;
        }

        return TypedResults.Ok(new PurgeResult(await queue.PurgeQueueAsync(id, cancellationToken)));
    }

    /// <summary>A purge cannot be undone: the caller names the group twice, so a mistyped or copied URL deletes nothing.</summary>
    private static ValidationProblem? Unconfirmed(string id, string? confirm, string what) =>
        string.Equals(confirm, id, StringComparison.Ordinal)
            ? null
            : GroupProblems.Invalid("confirm", $"Purging deletes {what} for good: repeat the group id, ?confirm={id}.");

    private static async Task<Results<Ok<MessageStatus>, ProblemHttpResult>> StatusAsync(string messageId, IMessageQueue queue, CancellationToken cancellationToken) =>
        await queue.GetStatusAsync(messageId, cancellationToken) is { } status
            ? TypedResults.Ok(status)
            : TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Message not found", detail: $"No message '{messageId}' is known (delivered messages are forgotten after the retention period).");
}

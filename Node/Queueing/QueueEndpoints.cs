using ClusterQueue.Contracts;
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
        admin.MapGet("/groups/{id}/dead-letters", ListDeadLettersAsync).WithTags("Dead letters").WithSummary("Dead letters of a group, oldest first; page with ?after= and ?limit=.");
        admin.MapPost("/groups/{id}/dead-letters/redrive", RedriveAsync).WithJsonBody<RedriveRequest>(required: false).WithTags("Dead letters")
            .WithSummary("Send dead letters back to the queue: all of them, or those named in messageIds.");
        admin.MapPost("/groups/{id}/purge", PurgeAsync).WithTags("Groups")
            .WithSummary("Delete the group's queued messages; ?confirm= must repeat the group id. Messages in a handler call finish as usual (on the SQS queue, SQS's purge takes them too).");
        admin.MapGet("/messages/{messageId}", StatusAsync).WithTags("Messages").WithSummary("Status of one message: queued, processing, delivered or dead.");
        return admin;
    }

    private static async Task<Results<Ok<DeadLetterList>, ValidationProblem, ProblemHttpResult>> ListDeadLettersAsync(
        string id, string? after, int? limit, GroupRegistry registry, IMessageQueue queue, CancellationToken cancellationToken)
    {
        if (await registry.FindAsync(id, cancellationToken) is null)
        {
            return GroupProblems.NotFound(id);
        }

        var size = limit ?? 100;
        if (size is < 1 or > MaxPageSize)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = [$"limit must be from 1 to {MaxPageSize}."] });
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

        var redrive = new RedriveRequest();
        if (request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0)
        {
            var (body, error) = await GroupEndpoints.ReadBodyAsync<RedriveRequest>(request, cancellationToken);
            if (body is null)
            {
                return error!;
            }

            redrive = body;
        }

        if (redrive.MessageIds is { Count: > MaxRedriveIds })
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["messageIds"] = [$"messageIds names at most {MaxRedriveIds} messages; omit it to redrive all."] });
        }

        var count = await queue.RedriveAsync(id, redrive.MessageIds, CancellationToken.None);
        if (count > 0)
        {
            Log.Redriven(logger, count, id);
            dispatcher.Notify(id);
        }

        return TypedResults.Ok(new RedriveResult(count));
    }

    private static async Task<Results<Ok<PurgeResult>, ValidationProblem, ProblemHttpResult>> PurgeAsync(
        string id, string? confirm, GroupRegistry registry, IMessageQueue queue, CancellationToken cancellationToken)
    {
        if (await registry.FindAsync(id, cancellationToken) is null)
        {
            return GroupProblems.NotFound(id);
        }

        // A purge cannot be undone: the caller names the group twice, so a mistyped or copied URL deletes nothing.
        if (!string.Equals(confirm, id, StringComparison.Ordinal))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["confirm"] = [$"Purging deletes the queued messages for good: repeat the group id, ?confirm={id}."] });
        }

        return TypedResults.Ok(new PurgeResult(await queue.PurgeQueueAsync(id, cancellationToken)));
    }

    private static async Task<Results<Ok<MessageStatus>, ProblemHttpResult>> StatusAsync(string messageId, IMessageQueue queue, CancellationToken cancellationToken) =>
        await queue.GetStatusAsync(messageId, cancellationToken) is { } status
            ? TypedResults.Ok(status)
            : TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Message not found", detail: $"No message '{messageId}' is known (delivered messages are forgotten after the retention period).");
}

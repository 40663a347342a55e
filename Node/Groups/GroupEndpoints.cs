using ClusterQueue.Contracts;
using ClusterQueue.Node.Admin;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.OpenApi;

namespace ClusterQueue.Node.Groups;

public static class GroupEndpoints
{
    /// <summary>A page of groups large enough for dashboards, small enough to answer quickly with 100,000 groups.</summary>
    private const int MaxPageSize = 1000;

    public static IServiceCollection AddGroups(this IServiceCollection services)
    {
        services.AddSingleton<GroupStore>();
        services.AddSingleton<GroupRegistry>();
        return services;
    }

    public static RouteGroupBuilder MapGroups(this RouteGroupBuilder admin)
    {
        var groups = admin.MapGroup("/groups").WithTags("Groups");
        groups.MapGet("/", List).WithPageSize(MaxPageSize).WithSummary("List groups ordered by id; page with ?after= and ?limit=.");
        groups.MapGet("/{id}", GetAsync).WithSummary("Read one group (the verification secret is never returned).");
        groups.MapPut("/{id}", PutAsync).WithJsonBody<GroupDefinition>(required: true).WithSummary("Create or replace a group: 201 when created, 200 when replaced.");
        groups.MapPatch("/{id}", PatchAsync).WithJsonBody<GroupDefinition>(required: true).WithSummary("Change some fields live; fields not sent keep their value.");
        groups.MapDelete("/{id}", DeleteAsync).WithSummary("Remove the group with its queue, dead letters and dedup keys.");
        groups.MapPost("/{id}/pause", (string id, GroupRegistry registry, CancellationToken cancellationToken) => SetPausedAsync(id, true, registry, cancellationToken))
            .WithSummary("Pause processing: ingest keeps accepting, nothing new is handed to the target, calls in flight finish. Idempotent; survives restarts.");
        groups.MapPost("/{id}/resume", (string id, GroupRegistry registry, CancellationToken cancellationToken) => SetPausedAsync(id, false, registry, cancellationToken))
            .WithSummary("Resume processing of a paused group. Idempotent.");
        return groups;
    }

    private static Results<Ok<GroupList>, ValidationProblem> List(GroupRegistry registry, string? after, string? limit)
    {
        var (size, invalid) = AdminQuery.PageSize(limit, MaxPageSize);
        if (invalid is not null)
        {
            return invalid;
        }

        var page = registry.List(after, size + 1);
        var more = page.Count > size;
        var groups = page.Take(size).Select(g => g.ToResponse()).ToList();
        return TypedResults.Ok(new GroupList(groups, more ? groups[^1].Id : null));
    }

    private static async Task<Results<Ok<GroupResponse>, ProblemHttpResult>> GetAsync(string id, GroupRegistry registry, CancellationToken cancellationToken) =>
        await registry.FindAsync(id, cancellationToken) is { } settings ? TypedResults.Ok(settings.ToResponse()) : GroupProblems.NotFound(id);

    private static async Task<Results<Created<GroupResponse>, Ok<GroupResponse>, ValidationProblem>> PutAsync(string id, HttpRequest request, GroupRegistry registry, CancellationToken cancellationToken)
    {
        if (!GroupValidator.IsValidId(id))
        {
            return InvalidId();
        }

        var (definition, error) = await ReadBodyAsync<GroupDefinition>(request, cancellationToken);
        if (definition is null)
        {
            return error!;
        }

        var result = await registry.PutAsync(id, definition, cancellationToken);
        return result.Outcome switch
        {
            GroupWriteOutcome.Invalid => TypedResults.ValidationProblem(result.Errors!),
            GroupWriteOutcome.Created => TypedResults.Created($"/v1/groups/{id}", result.Settings!.ToResponse()),
            _ => TypedResults.Ok(result.Settings!.ToResponse()),
        };
    }

    private static async Task<Results<Ok<GroupResponse>, ValidationProblem, ProblemHttpResult>> PatchAsync(string id, HttpRequest request, GroupRegistry registry, CancellationToken cancellationToken)
    {
        if (!registry.TryGet(id, out _))
        {
            return GroupProblems.NotFound(id);
        }

        var (patch, error) = await ReadBodyAsync<GroupDefinition>(request, cancellationToken);
        if (patch is null)
        {
            return error!;
        }

        var result = await registry.PatchAsync(id, patch, cancellationToken);
        return result.Outcome switch
        {
            GroupWriteOutcome.NotFound => GroupProblems.NotFound(id),
            GroupWriteOutcome.Invalid => TypedResults.ValidationProblem(result.Errors!),
            _ => TypedResults.Ok(result.Settings!.ToResponse()),
        };
    }

    private static async Task<Results<Ok<GroupResponse>, ProblemHttpResult>> SetPausedAsync(string id, bool paused, GroupRegistry registry, CancellationToken cancellationToken) =>
        await registry.SetPausedAsync(id, paused, cancellationToken) is { } settings ? TypedResults.Ok(settings.ToResponse()) : GroupProblems.NotFound(id);

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string id, GroupRegistry registry, CancellationToken cancellationToken) =>
        await registry.DeleteAsync(id, cancellationToken) ? TypedResults.NoContent() : GroupProblems.NotFound(id);

    /// <summary>
    /// Documents a JSON request body. Not Accepts(): its metadata makes routing answer a bare 415 for any other content
    /// type before the handler runs, so the 400 naming "body" that <see cref="ReadBodyAsync{T}"/> gives could never be seen.
    /// </summary>
    internal static RouteHandlerBuilder WithJsonBody<T>(this RouteHandlerBuilder builder, bool required) =>
        builder.AddOpenApiOperationTransformer(async (operation, context, cancellationToken) =>
        {
            var name = typeof(T).Name;
            context.Document!.AddComponent(name, await context.GetOrCreateSchemaAsync(typeof(T), null, cancellationToken));
            operation.RequestBody = new OpenApiRequestBody
            {
                Required = required,
                Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new() { Schema = new OpenApiSchemaReference(name, context.Document) } },
            };
        });

    private static ValidationProblem InvalidId() =>
        GroupProblems.Invalid("id", "id must be 1 to 128 characters of letters, digits, '.', '_' or '-', and not '.' or '..'.");

    /// <summary>Reads a JSON body as <see cref="AdminJson"/> does: anything but a well-formed value is a 400 naming the field at fault.</summary>
    internal static Task<(T? Value, ValidationProblem? Error)> ReadBodyAsync<T>(HttpRequest request, CancellationToken cancellationToken)
        where T : class => AdminJson.ReadAsync<T>(request, cancellationToken);
}

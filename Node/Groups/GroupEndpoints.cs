using System.Text.Json;
using System.Text.Json.Serialization;
using ClusterQueue.Contracts;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.OpenApi;

namespace ClusterQueue.Node.Groups;

public static class GroupEndpoints
{
    /// <summary>A page of groups large enough for dashboards, small enough to answer quickly with 100,000 groups.</summary>
    private const int MaxPageSize = 1000;

    // Unknown fields are refused: a misspelt "ratePerSec" must not silently fall back to nothing.
    internal static readonly JsonSerializerOptions RequestJson = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        NumberHandling = JsonNumberHandling.Strict,
    };

    public static IServiceCollection AddGroups(this IServiceCollection services)
    {
        services.AddSingleton<GroupStore>();
        services.AddSingleton<GroupRegistry>();
        return services;
    }

    public static RouteGroupBuilder MapGroups(this RouteGroupBuilder admin)
    {
        var groups = admin.MapGroup("/groups").WithTags("Groups");
        groups.MapGet("/", List).WithSummary("List groups ordered by id; page with ?after= and ?limit=.");
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

    private static Results<Ok<GroupList>, ValidationProblem> List(GroupRegistry registry, string? after, int? limit)
    {
        var size = limit ?? 100;
        if (size is < 1 or > MaxPageSize)
        {
            return GroupProblems.Invalid("limit", $"limit must be from 1 to {MaxPageSize}.");
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
        GroupProblems.Invalid("id", "id must be 1 to 128 characters of letters, digits, '.', '_' or '-'.");

    /// <summary>Reads a JSON body; a syntax or type error becomes a 400 naming the field it was found in.</summary>
    internal static async Task<(T? Value, ValidationProblem? Error)> ReadBodyAsync<T>(HttpRequest request, CancellationToken cancellationToken)
        where T : class
    {
        if (!request.HasJsonContentType())
        {
            return (null, GroupProblems.Invalid("body", "The body must be JSON (Content-Type: application/json)."));
        }

        try
        {
            var value = await JsonSerializer.DeserializeAsync<T>(request.Body, RequestJson, cancellationToken);
            return value is null
                ? (null, GroupProblems.Invalid("body", "The body must be a JSON object."))
                : (value, null);
        }
        catch (JsonException ex)
        {
            var field = string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? "body" : ex.Path.TrimStart('$', '.');
            return (null, GroupProblems.Invalid(field, $"Invalid JSON at '{field}': {FirstSentence(ex.Message)}"));
        }
    }

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? message : message[..(end + 1)];
    }
}

using System.Globalization;
using System.Text;
using ClusterQueue.Node.Admin;
using ClusterQueue.Node.Groups;
using Microsoft.AspNetCore.Http.HttpResults;

namespace ClusterQueue.Node.Dashboard;

/// <summary>GET /v1/dashboard/groups/{id}/history: the group's chart points, oldest first, one per interval.</summary>
public sealed record GroupHistoryResponse(string GroupId, double IntervalSeconds, double WindowSeconds, IReadOnlyList<HistoryPoint> Points);

/// <summary>
/// GET /v1/dashboard/messages/{id}/body: the first bytes of a stored body, as Text when they are UTF-8, else as Hex.
/// Kept is false when the node no longer holds the body (a delivered message drops it; on the SQS queue a queued
/// message's body is in SQS); Offloaded: it is in the payload store (SQS queue, large bodies). Neither is shown.
/// </summary>
public sealed record BodyResponse(string MessageId, string? ContentType, long SizeBytes, int ShownBytes, bool Truncated, bool Kept, bool Offloaded, string? Text, string? Hex);

/// <summary>
/// The browser dashboard: the page at / (static files embedded in the node) and the few reads under /v1/dashboard that
/// the rest of /v1 has no call for. Everything the page changes goes through the ordinary /v1 endpoints, behind the
/// same guard as curl (<see cref="AdminAccess"/>).
/// </summary>
public static class DashboardEndpoints
{
    /// <summary>A table page as long as a screen can usefully show; the page asks for 50.</summary>
    private const int MaxPageSize = 500;

    /// <summary>Longer than any group id (128), short enough that a search cannot be made to cost much.</summary>
    private const int MaxSearchLength = 128;

    public static IServiceCollection AddDashboard(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<DashboardOptions>().Bind(configuration.GetSection(DashboardOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<DashboardAssets>();
        services.AddSingleton<DashboardQueries>();
        services.AddSingleton<ClusterView>();
        services.AddSingleton<GroupHistory>();
        services.AddHostedService(provider => provider.GetRequiredService<GroupHistory>());
        services.AddSingleton<GroupTable>();
        return services;
    }

    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder endpoints, RouteGroupBuilder admin)
    {
        // The files hold nothing secret: the data they show comes from /v1, which asks for the token (or loopback).
        endpoints.MapGet("/", (HttpContext context, DashboardAssets assets) => assets.Serve(context, "index.html")).ExcludeFromDescription();
        endpoints.MapGet("/dashboard/{file}", (string file, HttpContext context, DashboardAssets assets) => assets.Serve(context, file)).ExcludeFromDescription();

        var api = admin.MapGroup("/dashboard").WithTags("Dashboard");
        api.MapGet("/groups", PageAsync).WithPageSize(MaxPageSize)
            .WithSummary("Every group's limits and live limiter state, one page at a time: ?q= (id contains, any case), ?sort=, ?order=asc|desc, ?offset=, ?limit=.")
            .WithDescription($"sort is one of {string.Join(", ", GroupTable.SortKeys.Keys)} (default id); ties are ordered by id. The answer also carries the node's totals (node) and, in a cluster, its members with the shards each holds. The state is at most Dashboard:TableMaxAge old (generatedAt). deliveredPerSecond and failedPerSecond are averages over the last Dashboard:SampleInterval on this node. tokens, inFlight and effectiveRatePerSecond are null for a group that another node of the cluster runs (here: false).");
        api.MapGet("/groups/{id}/history", History)
            .WithSummary("The group's recent history for charts: one point per Dashboard:SampleInterval over Dashboard:HistoryWindow, oldest first.")
            .WithDescription("Each point has delivered, failed and throttled calls per second over the interval before it, and the backlog, calls in flight, configured and effective rate and concurrency limit at its time. Kept in the node's memory for groups that were busy within the window (at most Dashboard:MaxHistoryGroups); empty otherwise, and after a restart.");
        api.MapGet("/messages/{messageId}/body", Body)
            .WithSummary("The first Dashboard:MaxBodyPreviewBytes of a stored message body: text when it is UTF-8, hex otherwise.");
        return endpoints;
    }

    private static async Task<Results<Ok<GroupPage>, ValidationProblem>> PageAsync(
        string? q, string? sort, string? order, string? offset, string? limit, GroupTable table, CancellationToken cancellationToken)
    {
        var (size, invalid) = AdminQuery.PageSize(limit, MaxPageSize);
        if (invalid is not null)
        {
            return invalid;
        }

        sort = string.IsNullOrEmpty(sort) ? "id" : sort;
        if (!GroupTable.SortKeys.ContainsKey(sort))
        {
            return GroupProblems.Invalid("sort", $"sort must be one of {string.Join(", ", GroupTable.SortKeys.Keys)}.");
        }

        if (order is not (null or "" or "asc" or "desc"))
        {
            return GroupProblems.Invalid("order", "order must be asc or desc.");
        }

        var skip = 0;
        if (!string.IsNullOrEmpty(offset) && (!int.TryParse(offset, NumberStyles.None, CultureInfo.InvariantCulture, out skip) || skip < 0))
        {
            return GroupProblems.Invalid("offset", "offset must be a whole number, 0 or more.");
        }

        if (q is { Length: > MaxSearchLength })
        {
            return GroupProblems.Invalid("q", $"q must be at most {MaxSearchLength} characters.");
        }

        return TypedResults.Ok(await table.PageAsync(q?.Trim(), sort, order == "desc", skip, size, cancellationToken));
    }

    private static Results<Ok<GroupHistoryResponse>, ProblemHttpResult> History(
        string id, GroupRegistry registry, GroupHistory history, Microsoft.Extensions.Options.IOptions<DashboardOptions> options)
    {
        if (!registry.TryGet(id, out _))
        {
            return GroupProblems.NotFound(id);
        }

        var settings = options.Value;
        return TypedResults.Ok(new GroupHistoryResponse(id, settings.SampleInterval.TotalSeconds, settings.HistoryWindow.TotalSeconds, history.PointsOf(id)));
    }

    private static Results<Ok<BodyResponse>, ProblemHttpResult> Body(
        string messageId, DashboardQueries queries, Microsoft.Extensions.Options.IOptions<DashboardOptions> options)
    {
        var max = options.Value.MaxBodyPreviewBytes;
        if (queries.ReadBody(messageId, max) is not { } body)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Message not found", detail: $"No message '{messageId}' is kept with its body.");
        }

        var truncated = body.Kept && body.SizeBytes > body.Bytes.Length;
        var text = AsText(body.Bytes, truncated);
        return TypedResults.Ok(new BodyResponse(
            messageId, body.ContentType, body.SizeBytes, body.Bytes.Length, truncated, body.Kept, body.Offloaded, body.Kept ? text : null, body.Kept && text is null ? Convert.ToHexStringLower(body.Bytes) : null));
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The bytes as text when they are UTF-8; a cut at the preview's end may split one character, which is dropped.</summary>
    private static string? AsText(byte[] bytes, bool truncated)
    {
        for (var cut = 0; cut <= (truncated ? Math.Min(3, bytes.Length) : 0); cut++)
        {
            try
            {
                var text = StrictUtf8.GetString(bytes, 0, bytes.Length - cut);
                // Control characters other than whitespace mean a binary body that happens to decode.
                return text.Any(c => char.IsControl(c) && c is not ('\n' or '\r' or '\t')) ? null : text;
            }
            catch (DecoderFallbackException)
            {
            }
        }

        return null;
    }
}

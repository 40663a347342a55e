using Microsoft.AspNetCore.Http.HttpResults;

namespace ClusterQueue.Node.Groups;

/// <summary>The problem details every endpoint that names a group answers with when the group does not exist.</summary>
public static class GroupProblems
{
    public static ProblemHttpResult NotFound(string id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Group not found", detail: $"No group '{id}' is defined.");
}

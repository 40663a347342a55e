using Microsoft.AspNetCore.Http.HttpResults;

namespace ClusterQueue.Node.Groups;

/// <summary>The problem details the endpoints share: a group that does not exist, and a request field at fault.</summary>
public static class GroupProblems
{
    public static ProblemHttpResult NotFound(string id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Group not found", detail: $"No group '{id}' is defined.");

    /// <summary>400 naming the field (query parameter, header or body member) and why it was refused.</summary>
    public static ValidationProblem Invalid(string field, string why) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [why] });
}

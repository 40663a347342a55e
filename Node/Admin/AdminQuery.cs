using System.Globalization;
using System.Text.Json.Nodes;
using ClusterQueue.Node.Groups;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.OpenApi;

namespace ClusterQueue.Node.Admin;

/// <summary>
/// Numbers in /v1 query strings, parsed by the endpoint rather than bound: binding answers a value that does not parse
/// (?limit=abc) with a bare 400 that names nothing, where the endpoint can name the parameter as it does for a value out
/// of range.
/// </summary>
public static class AdminQuery
{
    /// <summary>Large enough for a dashboard's page, small enough to answer quickly.</summary>
    public const int DefaultPageSize = 100;

    /// <summary>?limit=: absent or empty is the default; anything but a whole number from 1 to <paramref name="max"/> is a 400 naming limit.</summary>
    public static (int Size, ValidationProblem? Error) PageSize(string? limit, int max)
    {
        if (string.IsNullOrEmpty(limit))
        {
            return (DefaultPageSize, null);
        }

        return int.TryParse(limit, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var size) && size >= 1 && size <= max
            ? (size, null)
            : (0, GroupProblems.Invalid("limit", $"limit must be a whole number from 1 to {max}."));
    }

    /// <summary>Documents ?limit= as the integer it is: the endpoint takes it as a string only to name it when it does not parse.</summary>
    public static RouteHandlerBuilder WithPageSize(this RouteHandlerBuilder builder, int max) =>
        builder.AddOpenApiOperationTransformer((operation, _, _) =>
        {
            if (operation.Parameters?.OfType<OpenApiParameter>().FirstOrDefault(p => p.Name == "limit") is { } limit)
            {
                limit.Description = $"Page size, 1 to {max}; {DefaultPageSize} when absent.";
                limit.Schema = new OpenApiSchema
                {
                    Type = JsonSchemaType.Integer,
                    Format = "int32",
                    Minimum = "1",
                    Maximum = max.ToString(CultureInfo.InvariantCulture),
                    Default = JsonValue.Create(DefaultPageSize),
                };
            }

            return Task.CompletedTask;
        });
}

using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Admin;

/// <summary>Guards the admin API: a bearer token when one is configured, otherwise loopback clients only.</summary>
public static class AdminAccess
{
    public static IServiceCollection AddAdmin(this IServiceCollection services, IConfiguration configuration)
    {
        var clustered = string.Equals(configuration["ClusterQueue:Store"], "postgres", StringComparison.Ordinal);
        services.AddOptions<AdminOptions>().Bind(configuration.GetSection(AdminOptions.Section))
            .Validate(
                options => !clustered || !string.IsNullOrWhiteSpace(options.AdminToken),
                "ClusterQueue:AdminToken is required when ClusterQueue:Store is 'postgres': a cluster's nodes serve /v1 to the network, never to loopback alone.")
            .ValidateOnStart();
        return services;
    }

    /// <summary>The /v1 route group, guarded.</summary>
    public static RouteGroupBuilder MapAdmin(this IEndpointRouteBuilder endpoints) =>
        endpoints.MapGroup("/v1").AddEndpointFilter(async (context, next) =>
        {
            var token = context.HttpContext.RequestServices.GetRequiredService<IOptions<AdminOptions>>().Value.AdminToken;
            return Check(context.HttpContext, token) ?? await next(context);
        });

    private static IResult? Check(HttpContext context, string? token)
    {
        if (string.IsNullOrEmpty(token))
        {
            // No connection address means an in-process or Unix-socket caller, which is local by construction.
            var remote = context.Connection.RemoteIpAddress;
            return remote is null || IPAddress.IsLoopback(remote)
                ? null
                : TypedResults.Problem(
                    statusCode: StatusCodes.Status403Forbidden,
                    title: "Admin API is loopback-only",
                    detail: "No ClusterQueue:AdminToken is configured, so /v1 answers loopback clients only.");
        }

        var header = context.Request.Headers.Authorization.ToString();
        const string Scheme = "Bearer ";
        if (header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase)
            && CryptographicOperations.FixedTimeEquals(
                SHA256.HashData(Encoding.UTF8.GetBytes(header[Scheme.Length..].Trim())),
                SHA256.HashData(Encoding.UTF8.GetBytes(token))))
        {
            return null;
        }

        context.Response.Headers.WWWAuthenticate = "Bearer";
        return TypedResults.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "Unauthorized", detail: "/v1 needs Authorization: Bearer <admin token>.");
    }
}

using System.Net;
using System.Security.Cryptography;
using System.Text;
using ClusterQueue.Node.Groups;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Admin;

/// <summary>
/// Guards the admin API (/v1): a bearer token when one is configured, otherwise loopback clients only.
///
/// Loopback mode trusts the network position, and a browser on the operator's machine holds it too: any web page it
/// shows can make it send requests to 127.0.0.1. So in loopback mode a request must also
///   - be addressed to a loopback name (Host localhost, 127.0.0.0/8 or [::1], any port): a DNS-rebinding page reaches
///     the node under its own name (Host: rebind.evil.example:8080), which it controls and which resolves to loopback;
///   - if it changes anything (any method but GET, HEAD, OPTIONS), not come from a page of another origin: its Origin,
///     when present, is the node's own, and its Sec-Fetch-Site, when present, is same-origin or none. A cross-site
///     "simple" POST (text/plain, no preflight) carries both; curl carries neither.
/// A token needs none of this: a browser never attaches it on its own, so a request that carries it was meant.
/// In both modes a request with a body must say it is JSON, the only body /v1 reads; it also keeps every body out of
/// reach of an HTML form, which can send only text/plain, urlencoded and multipart bodies.
/// </summary>
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
            var http = context.HttpContext;
            var token = http.RequestServices.GetRequiredService<IOptions<AdminOptions>>().Value.AdminToken;
            var refusal = string.IsNullOrEmpty(token) ? CheckLoopback(http) : CheckToken(http, token);
            return refusal ?? CheckBodyType(http.Request) ?? await next(context);
        });

    private static IResult? CheckLoopback(HttpContext context)
    {
        // No connection address means an in-process or Unix-socket caller, which is local by construction.
        var remote = context.Connection.RemoteIpAddress;
        if (remote is not null && !IPAddress.IsLoopback(remote))
        {
            return Forbidden(context, "Admin API is loopback-only", "No ClusterQueue:AdminToken is configured, so /v1 answers loopback clients only.");
        }

        var request = context.Request;
        if (!IsLoopbackName(request.Host))
        {
            return Forbidden(
                context,
                "Admin API needs a loopback host name",
                $"No ClusterQueue:AdminToken is configured, so /v1 answers only requests addressed to localhost, 127.0.0.0/8 or [::1] (this one's Host is '{request.Host.Value}'): "
                + "a web page can give its own name a loopback address (DNS rebinding). Use http://localhost:<port>/ or http://127.0.0.1:<port>/, or configure ClusterQueue:AdminToken.");
        }

        if (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method))
        {
            return null;
        }

        var origin = request.Headers.Origin;
        var site = request.Headers["Sec-Fetch-Site"];
        if ((origin.Count == 0 || (origin.Count == 1 && IsOwnOrigin(request, origin.ToString())))
            && site.All(value => value is "same-origin" or "none"))
        {
            return null;
        }

        var sender = origin.Count > 0 ? $"Origin '{origin}'" : $"Sec-Fetch-Site '{site}'";
        return Forbidden(
            context,
            "Cross-origin change refused",
            $"No ClusterQueue:AdminToken is configured, so /v1 refuses changes sent by a web page of another origin ({sender}): any site open in a browser on this machine "
            + "could send them. Send the request without a browser (curl) or from the node's own origin, or configure ClusterQueue:AdminToken.");
    }

    /// <summary>
    /// localhost and literal loopback addresses only. Each one is loopback wherever it is resolved; "localhost." and
    /// "*.localhost" are left to whatever resolver the machine uses (RFC 6761 only asks resolvers to keep them on
    /// loopback), and no tool sends them unasked.
    /// </summary>
    internal static bool IsLoopbackName(HostString host)
    {
        if (!host.HasValue)
        {
            return false;
        }

        var name = host.Host;
        if (string.Equals(name, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        // A name that parses as an address is that address to every client (no DNS name looks like one), so 127.1 is as safe as 127.0.0.1.
        var literal = name.StartsWith('[') && name.EndsWith(']') ? name[1..^1] : name;
        return IPAddress.TryParse(literal, out var address) && IPAddress.IsLoopback(address);
    }

    /// <summary>Whether an Origin header names the node as this request reached it: same scheme, host and port. "null" is no origin's own.</summary>
    private static bool IsOwnOrigin(HttpRequest request, string origin)
    {
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.PathAndQuery != "/" || uri.UserInfo.Length > 0 || uri.Fragment.Length > 0)
        {
            return false;
        }

        var port = request.Host.Port ?? (request.IsHttps ? 443 : 80);
        return string.Equals(uri.Scheme, request.Scheme, StringComparison.OrdinalIgnoreCase)
            && string.Equals(uri.Host, request.Host.Host, StringComparison.OrdinalIgnoreCase)
            && uri.Port == port;
    }

    private static IResult? CheckToken(HttpContext context, string token)
    {
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

    /// <summary>A body that is not declared JSON is refused before any endpoint runs, also where the endpoint would not read it.</summary>
    private static IResult? CheckBodyType(HttpRequest request) =>
        HasBody(request) && !request.HasJsonContentType() ? GroupProblems.Invalid("body", AdminJson.NotJson) : null;

    /// <summary>A Content-Length above 0, or a body of unknown length (chunked, or an HTTP/2 stream that did not end with its headers).</summary>
    private static bool HasBody(HttpRequest request) =>
        request.ContentLength is { } length
            ? length > 0
            : request.HttpContext.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? request.Headers.TransferEncoding.Count > 0;

    private static IResult Forbidden(HttpContext context, string title, string detail)
    {
        var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(AdminAccess));
        Log.Refused(logger, context.Request.Method, context.Request.Path, title);
        return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: title, detail: detail);
    }
}

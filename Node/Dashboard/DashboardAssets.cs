using System.Collections.Frozen;
using System.Security.Cryptography;

namespace ClusterQueue.Node.Dashboard;

/// <summary>
/// The dashboard's page, scripts and styles, embedded in the node's assembly: `dotnet run`, the published output and
/// the image all serve the same files, and nothing is fetched from anywhere else, so the page works offline.
/// Every answer carries a Content-Security-Policy that allows the node's own origin only: no inline script, no other
/// host, no framing by another page (clickjacking of the buttons that change things).
/// </summary>
public sealed class DashboardAssets
{
    /// <summary>What the page may load and send: its own origin, nothing inline, no plugins, no framing.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors 'none'";

    private const string Prefix = "dashboard/";

    private static readonly FrozenDictionary<string, string> ContentTypes = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private readonly FrozenDictionary<string, Asset> _assets;

    public DashboardAssets()
    {
        var assembly = typeof(DashboardAssets).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var bytes = buffer.ToArray();
            var file = name[Prefix.Length..];
            var type = ContentTypes.GetValueOrDefault(Path.GetExtension(file), "application/octet-stream");
            assets[file] = new Asset(bytes, type, $"\"{Convert.ToHexStringLower(SHA256.HashData(bytes))[..32]}\"");
        }

        _assets = assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>The embedded files' names, for the tests.</summary>
    public IEnumerable<string> Names => _assets.Keys;

    /// <summary>
    /// Answers with one file. Revalidated on every load (no-cache with an ETag) so a node upgrade never leaves a tab
    /// running old scripts against a new API, while an unchanged file costs a 304.
    /// </summary>
    public IResult Serve(HttpContext context, string file)
    {
        if (!_assets.TryGetValue(file, out var asset))
        {
            return TypedResults.NotFound();
        }

        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.CacheControl = "no-cache";
        headers.ETag = asset.ETag;
        if (context.Request.Headers.IfNoneMatch.Contains(asset.ETag))
        {
            return TypedResults.StatusCode(StatusCodes.Status304NotModified);
        }

        return TypedResults.Bytes(asset.Bytes, asset.ContentType);
    }

    private sealed record Asset(byte[] Bytes, string ContentType, string ETag);
}

using System.Buffers;
using Microsoft.AspNetCore.Http.Features;

namespace ClusterQueue.Node.Ingress;

/// <summary>Reads a request body up to a limit, stopping as soon as the limit is passed instead of buffering the rest.</summary>
internal static class RequestBody
{
    private const int ChunkSize = 16 * 1024;

    /// <summary>The body, or null when it is longer than <paramref name="maxBytes"/>.</summary>
    public static async Task<byte[]?> ReadAsync(HttpRequest request, long maxBytes, CancellationToken cancellationToken)
    {
        if (request.ContentLength is { } declared && declared > maxBytes)
        {
            return null;
        }

        // The group's limit is the one that applies; lift the server-wide default (30 MB) out of its way.
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = maxBytes + 1;
        }

        if (request.ContentLength is { } length)
        {
            var body = new byte[length];
            var read = 0;
            while (read < length)
            {
                var n = await request.Body.ReadAsync(body.AsMemory(read), cancellationToken);
                if (n == 0)
                {
                    throw new BadHttpRequestException("The request body ended before its Content-Length.");
                }

                read += n;
            }

            return body;
        }

        var buffer = new ArrayBufferWriter<byte>(ChunkSize);
        while (true)
        {
            var n = await request.Body.ReadAsync(buffer.GetMemory(ChunkSize), cancellationToken);
            if (n == 0)
            {
                return buffer.WrittenSpan.ToArray();
            }

            buffer.Advance(n);
            if (buffer.WrittenCount > maxBytes)
            {
                return null;
            }
        }
    }
}

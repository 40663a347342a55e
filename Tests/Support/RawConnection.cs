using System.Net.Sockets;
using System.Text;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// A hand-written HTTP/1.1 exchange on a loopback socket, for requests HttpClient will not send: chunk framing of the
/// test's own choosing, headers whose body never comes, a body cut off halfway by the client hanging up.
/// </summary>
public sealed class RawConnection : IAsyncDisposable
{
    private readonly TcpClient _client;
    private readonly NetworkStream _stream;

    private RawConnection(TcpClient client)
    {
        _client = client;
        _stream = client.GetStream();
    }

    public static async Task<RawConnection> OpenAsync(Uri server, CancellationToken cancellationToken = default)
    {
        var client = new TcpClient { NoDelay = true };
        try
        {
            await client.ConnectAsync(server.Host, server.Port, cancellationToken);
            return new RawConnection(client);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>The head of a POST (request line and headers, ending with the blank line); the body is sent apart.</summary>
    public static string PostHead(Uri server, string path, IEnumerable<string> headers) =>
        $"POST {path} HTTP/1.1\r\nHost: {server.Authority}\r\n{string.Concat(headers.Select(h => h + "\r\n"))}\r\n";

    /// <summary>A body in HTTP/1.1 chunks of <paramref name="chunkSize"/> bytes, with the closing zero-length chunk.</summary>
    public static byte[] Chunked(byte[] body, int chunkSize)
    {
        using var framed = new MemoryStream();
        for (var offset = 0; offset < body.Length; offset += chunkSize)
        {
            var length = Math.Min(chunkSize, body.Length - offset);
            framed.Write(Encoding.ASCII.GetBytes($"{length:x}\r\n"));
            framed.Write(body, offset, length);
            framed.Write("\r\n"u8);
        }

        framed.Write("0\r\n\r\n"u8);
        return framed.ToArray();
    }

    public Task SendAsync(string text, CancellationToken cancellationToken = default) => SendAsync(Encoding.ASCII.GetBytes(text), cancellationToken);

    public async Task SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default)
    {
        await _stream.WriteAsync(bytes, cancellationToken);
        await _stream.FlushAsync(cancellationToken);
    }

    /// <summary>
    /// Reads one response. A body framed by Content-Length or chunks is read to its end; a response with neither is
    /// read until the server closes the connection.
    /// </summary>
    public async Task<RawResponse> ReadResponseAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        var received = new List<byte>();
        var buffer = new byte[16 * 1024];
        int headEnd;
        while ((headEnd = IndexOfBlankLine(received)) < 0)
        {
            var n = await _stream.ReadAsync(buffer, cancel.Token);
            if (n == 0)
            {
                throw new IOException($"The server closed the connection before a whole response head: '{Encoding.ASCII.GetString([.. received])}'.");
            }

            received.AddRange(buffer.AsSpan(0, n));
        }

        var lines = Encoding.ASCII.GetString([.. received.Take(headEnd)]).Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }

        var rest = new List<byte>(received.Skip(headEnd + 4));
        async Task<bool> MoreAsync()
        {
            var n = await _stream.ReadAsync(buffer, cancel.Token);
            rest.AddRange(buffer.AsSpan(0, n));
            return n > 0;
        }

        if (headers.TryGetValue("Content-Length", out var length))
        {
            var expected = int.Parse(length, System.Globalization.CultureInfo.InvariantCulture);
            while (rest.Count < expected && await MoreAsync())
            {
            }

            return new RawResponse(status, headers, [.. rest.Take(expected)]);
        }

        if (headers.TryGetValue("Transfer-Encoding", out var encoding) && encoding.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            var body = new List<byte>();
            var at = 0;
            while (true)
            {
                int lineEnd;
                while ((lineEnd = IndexOf(rest, at, "\r\n"u8)) < 0)
                {
                    if (!await MoreAsync())
                    {
                        throw new IOException("The server closed the connection inside a chunked body.");
                    }
                }

                var size = Convert.ToInt32(Encoding.ASCII.GetString([.. rest.Skip(at).Take(lineEnd - at)]).Split(';')[0], 16);
                at = lineEnd + 2;
                if (size == 0)
                {
                    return new RawResponse(status, headers, [.. body]);
                }

                while (rest.Count < at + size + 2)
                {
                    if (!await MoreAsync())
                    {
                        throw new IOException("The server closed the connection inside a chunk.");
                    }
                }

                body.AddRange(rest.Skip(at).Take(size));
                at += size + 2;
            }
        }

        while (await MoreAsync())
        {
        }

        return new RawResponse(status, headers, [.. rest]);
    }

    /// <summary>Hangs up at once with a reset (SO_LINGER 0), as a client process that dies does.</summary>
    public void Reset()
    {
        _client.LingerState = new LingerOption(true, 0);
        _client.Close();
    }

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }

    private static int IndexOfBlankLine(List<byte> bytes) => IndexOf(bytes, 0, "\r\n\r\n"u8);

    private static int IndexOf(List<byte> bytes, int from, ReadOnlySpan<byte> what)
    {
        for (var i = from; i + what.Length <= bytes.Count; i++)
        {
            var match = true;
            for (var j = 0; j < what.Length && match; j++)
            {
                match = bytes[i + j] == what[j];
            }

            if (match)
            {
                return i;
            }
        }

        return -1;
    }
}

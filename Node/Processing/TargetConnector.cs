using System.Net;
using System.Net.Sockets;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// Opens the forwarder's connections when <c>ClusterQueue:Processing:RefuseLinkLocalTargets</c> is on: it resolves the
/// host itself and refuses, before any connection, if any address is link-local or a cloud metadata address. Checking
/// at connect time rather than when a group is defined is what makes it hold: a name can resolve elsewhere tomorrow
/// (DNS rebinding), and every address of the name is checked, not just the first one tried.
/// </summary>
public sealed class TargetConnector(Func<string, CancellationToken, Task<IPAddress[]>> resolve)
{
    public const string Setting = ProcessingOptions.Section + ":" + nameof(ProcessingOptions.RefuseLinkLocalTargets);

    /// <summary>AWS's instance metadata service over IPv6 (Nitro instances); its IPv4 address is in 169.254.0.0/16.</summary>
    private static readonly IPAddress AwsMetadataV6 = IPAddress.Parse("fd00:ec2::254");

    public static TargetConnector System { get; } = new(Dns.GetHostAddressesAsync);

    /// <summary>
    /// Link-local (169.254.0.0/16, fe80::/10, where every cloud's metadata service answers at 169.254.169.254) or AWS's
    /// IPv6 metadata address, also when written as an IPv4-mapped IPv6 address (::ffff:169.254.169.254).
    /// </summary>
    public static bool IsRefused(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> bytes = stackalloc byte[4];
            address.TryWriteBytes(bytes, out _);
            return bytes[0] == 169 && bytes[1] == 254;
        }

        return address.IsIPv6LinkLocal || IPAddress.Equals(new IPAddress(address.GetAddressBytes()), AwsMetadataV6);
    }

    /// <summary>For <see cref="SocketsHttpHandler.ConnectCallback"/>: resolves, checks every address, then connects to the first that answers.</summary>
    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        // Through a proxy the endpoint is the proxy's, and the proxy resolves the target's name; an address written
        // into the target URL is still checked here.
        if (context.InitialRequestMessage.RequestUri is { HostNameType: UriHostNameType.IPv4 or UriHostNameType.IPv6 } target
            && IPAddress.TryParse(target.IdnHost, out var literal))
        {
            Refuse(literal);
        }

        var host = context.DnsEndPoint.Host;
        var addresses = IPAddress.TryParse(host, out var direct) ? [direct] : await resolve(host, cancellationToken);
        foreach (var address in addresses)
        {
            Refuse(address);
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, context.DnsEndPoint.Port, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void Refuse(IPAddress address)
    {
        if (IsRefused(address))
        {
            throw new HttpRequestException(
                HttpRequestError.ConnectionError,
                $"refused by {Setting}: {address} is a link-local or cloud metadata address; no connection was made");
        }
    }
}

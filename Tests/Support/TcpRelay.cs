using System.Net;
using System.Net.Sockets;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// A loopback TCP relay in front of a real server, which a test can cut (closing the port and every open connection,
/// as an outage would) and restore on the same port. Bytes pass through untouched.
/// </summary>
public sealed class TcpRelay : IAsyncDisposable
{
    private readonly Uri _target;
    private TaskCompletionSource _flowing = Completed();
    private readonly object _gate = new();
    private readonly List<TcpClient> _connections = [];
    private TcpListener? _listener;
    private Task _accepting = Task.CompletedTask;

    public TcpRelay(Uri target)
    {
        _target = target;
        Port = LoopbackServer.FreePort();
        Endpoint = new Uri($"http://127.0.0.1:{Port}/");
        Restore();
    }

    public int Port { get; }

    public Uri Endpoint { get; }

    /// <summary>Refuses new connections and drops open ones.</summary>
    public void Cut()
    {
        lock (_gate)
        {
            _listener?.Stop();
            _listener = null;
            foreach (var connection in _connections)
            {
                connection.Dispose();
            }

            _connections.Clear();
        }
    }

    /// <summary>
    /// A partition: connections stay open but no byte gets through either way, and new ones never reach the target,
    /// so the client sees silence, not an error, until its own timeouts give up.
    /// </summary>
    public void Freeze()
    {
        lock (_gate)
        {
            if (_flowing.Task.IsCompleted)
            {
                _flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    /// <summary>Ends a <see cref="Freeze"/>: what was held back flows on.</summary>
    public void Thaw()
    {
        lock (_gate)
        {
            _flowing.TrySetResult();
        }
    }

    public void Restore()
    {
        lock (_gate)
        {
            if (_listener is not null)
            {
                return;
            }

            _listener = new TcpListener(IPAddress.Loopback, Port);
            _listener.Start();
            var listener = _listener;
            _accepting = Task.Run(() => AcceptAsync(listener));
        }
    }

    private async Task AcceptAsync(TcpListener listener)
    {
        while (true)
        {
            TcpClient inbound;
            try
            {
                inbound = await listener.AcceptTcpClientAsync();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            _ = Task.Run(() => RelayAsync(inbound));
        }
    }

    private async Task RelayAsync(TcpClient inbound)
    {
        var outbound = new TcpClient();
        lock (_gate)
        {
            _connections.Add(inbound);
            _connections.Add(outbound);
        }

        try
        {
            await _flowing.Task;
            await outbound.ConnectAsync(_target.Host, _target.Port);
            var up = PumpAsync(inbound.GetStream(), outbound.GetStream());
            var down = PumpAsync(outbound.GetStream(), inbound.GetStream());
            await Task.WhenAny(up, down);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            // Cut, or one side hung up: the other side sees the connection close, as it would in an outage.
        }
        finally
        {
            inbound.Dispose();
            outbound.Dispose();
        }
    }

    private async Task PumpAsync(Stream from, Stream to)
    {
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await from.ReadAsync(buffer)) > 0)
        {
            await _flowing.Task;
            await to.WriteAsync(buffer.AsMemory(0, read));
        }
    }

    public async ValueTask DisposeAsync()
    {
        Thaw();
        Cut();
        await _accepting;
    }

    private static TaskCompletionSource Completed()
    {
        var flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        flowing.SetResult();
        return flowing;
    }
}

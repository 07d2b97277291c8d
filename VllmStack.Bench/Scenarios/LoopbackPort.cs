using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace VllmStack.Bench.Scenarios;

/// <summary>Loopback ports for the servers a benchmark starts: a free one, and waiting until one accepts.</summary>
public static class LoopbackPort
{
    /// <summary>A port free on 127.0.0.1 right now (the OS picks it).</summary>
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// Returns once <paramref name="port"/> accepts a connection; throws when <paramref name="server"/> exits first or
    /// after about 5 s.
    /// </summary>
    public static async Task WaitUntilAcceptingAsync(int port, Process server, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
                return;
            }
            catch (SocketException) when (attempt < 100 && !server.HasExited)
            {
                await Task.Delay(50, cancellationToken);
            }
        }
    }
}

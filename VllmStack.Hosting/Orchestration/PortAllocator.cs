using System.Net;
using System.Net.Sockets;

namespace VllmStack.Hosting.Orchestration;

/// <summary>Free loopback ports, from the operating system, never handed out twice by one run.</summary>
public sealed class PortAllocator
{
    private readonly HashSet<int> _given = [];
    private readonly Lock _lock = new();

    public int Allocate()
    {
        lock (_lock)
        {
            for (var attempt = 0; attempt < 100; attempt++)
            {
                using var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                var port = ((IPEndPoint)listener.LocalEndpoint).Port;
                listener.Stop();
                if (_given.Add(port))
                {
                    return port;
                }
            }
            throw new InvalidOperationException("No free port found after 100 attempts.");
        }
    }

    public static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

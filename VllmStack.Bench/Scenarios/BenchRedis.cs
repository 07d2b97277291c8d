using System.Diagnostics;
using System.Globalization;

namespace VllmStack.Bench.Scenarios;

/// <summary>A throw-away redis-server on a free loopback port, without persistence, stopped by its own process id.</summary>
public sealed class BenchRedis : IAsyncDisposable
{
    private readonly Process _process;

    private BenchRedis(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The connection string for <c>ConnectionStrings__cache</c>.</summary>
    public string Endpoint => $"127.0.0.1:{Port}";

    public static async Task<BenchRedis> StartAsync(CancellationToken cancellationToken)
    {
        var port = LoopbackPort.Free();
        var process = Process.Start(new ProcessStartInfo("redis-server",
            ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]) { RedirectStandardOutput = true })
            ?? throw new InvalidOperationException("redis-server did not start (apt-get install redis-server)");
        var redis = new BenchRedis(process, port);
        try
        {
            await LoopbackPort.WaitUntilAcceptingAsync(port, process, cancellationToken);
            return redis;
        }
        catch
        {
            await redis.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
        await _process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        _process.Dispose();
    }
}

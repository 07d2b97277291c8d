using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Infrastructure.Redis;

public enum RedisServerKind
{
    /// <summary>Debian's redis-server 7.</summary>
    Redis,

    /// <summary>Garnet from the repository's tool manifest (dotnet tool run garnet-server).</summary>
    Garnet,
}

/// <summary>
/// A real redis-server or Garnet on a loopback port, started for a test and killed by its own process id.
/// Garnet runs as <c>dotnet tool run</c>, which starts the server as a child process: killing only the parent
/// with SIGKILL would leave the server running, so the whole tree is killed.
/// </summary>
public sealed class RedisServerProcess : IAsyncDisposable
{
    private static readonly TimeSpan RedisStartTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan GarnetStartTimeout = TimeSpan.FromSeconds(45);

    private readonly Process _process;
    private readonly StringBuilder _output;
    private readonly string? _workingDirectory;

    private RedisServerProcess(RedisServerKind kind, int port, string? password, Process process, StringBuilder output, string? workingDirectory)
    {
        Kind = kind;
        Port = port;
        Password = password;
        _process = process;
        _output = output;
        _workingDirectory = workingDirectory;
    }

    public RedisServerKind Kind { get; }

    public int Port { get; }

    public string? Password { get; }

    public int ProcessId => _process.Id;

    public string Endpoint => $"127.0.0.1:{Port}";

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts a server and waits (bounded) until it answers PING, or NOAUTH when it has a password.</summary>
    /// <param name="lua">Garnet only: scripting on (as the stack runs it); off, as an external Garnet may be configured.</param>
    public static async Task<RedisServerProcess> StartAsync(RedisServerKind kind, string? password = null, int? port = null, bool lua = true)
    {
        var chosenPort = port ?? FreeLoopbackPort();
        var portText = chosenPort.ToString(CultureInfo.InvariantCulture);
        ProcessStartInfo info;
        string? workingDirectory = null;
        if (kind == RedisServerKind.Redis)
        {
            // A scratch directory, so that nothing a redis-server might write lands in the repository.
            workingDirectory = Directory.CreateTempSubdirectory("vllmstack-redis-").FullName;
            info = new ProcessStartInfo("redis-server") { WorkingDirectory = workingDirectory };
            foreach (var arg in new[] { "--port", portText, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no" })
            {
                info.ArgumentList.Add(arg);
            }
            if (password is not null)
            {
                info.ArgumentList.Add("--requirepass");
                info.ArgumentList.Add(password);
            }
        }
        else
        {
            // The tool manifest is at the repository root, so Garnet has to start there.
            info = new ProcessStartInfo("dotnet") { WorkingDirectory = RepoPaths.Root };
            // Lua as the stack's Garnet runs it (VllmStack.Hosting): enabled, and each script run as a transaction.
            foreach (var arg in new[] { "tool", "run", "garnet-server", "--", "--port", portText, "--bind", "127.0.0.1" }
                .Concat(lua ? ["--lua", "--lua-transaction-mode"] : []))
            {
                info.ArgumentList.Add(arg);
            }
            if (password is not null)
            {
                foreach (var arg in new[] { "--auth", "Password", "--password", password })
                {
                    info.ArgumentList.Add(arg);
                }
            }
        }
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;

        var output = new StringBuilder();
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new InvalidOperationException($"{info.FileName} did not start.");
        }
        catch (System.ComponentModel.Win32Exception e) when (kind == RedisServerKind.Redis)
        {
            throw new InvalidOperationException("redis-server is not installed: apt-get install -y redis-server", e);
        }
        void OnLine(string? line)
        {
            if (line is not null)
            {
                lock (output)
                {
                    output.AppendLine(line);
                }
            }
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var server = new RedisServerProcess(kind, chosenPort, password, process, output, workingDirectory);
        try
        {
            await server.WaitUntilAnsweringAsync(kind == RedisServerKind.Redis ? RedisStartTimeout : GarnetStartTimeout);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Kills the server at once, as a crash would, and waits for it (and its children) to be gone.</summary>
    public async Task KillAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            // Killed and still not reaped after 15 s: nothing more a test can do.
        }
    }

    /// <summary>A new server of the same kind, password and port (after <see cref="KillAsync"/>).</summary>
    public Task<RedisServerProcess> StartAgainAsync() => StartAsync(Kind, Password, Port);

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
        if (_workingDirectory is not null)
        {
            try
            {
                Directory.Delete(_workingDirectory, recursive: true);
            }
            catch (IOException)
            {
                // A scratch directory in /tmp; leaving it behind is harmless.
            }
        }
    }

    public override string ToString() => $"{Kind} on {Endpoint} (pid {ProcessId})";

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Raw RESP over a socket, independent of the client under test.</summary>
    private async Task WaitUntilAnsweringAsync(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        string last = "no attempt";
        while (clock.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{Kind} exited with code {_process.ExitCode} before answering on port {Port}:\n{Output}");
            }
            try
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                using var attempt = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await socket.ConnectAsync(IPAddress.Loopback, Port, attempt.Token);
                await socket.SendAsync("*1\r\n$4\r\nPING\r\n"u8.ToArray(), SocketFlags.None, attempt.Token);
                var buffer = new byte[64];
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None, attempt.Token);
                last = Encoding.ASCII.GetString(buffer, 0, read);
                if (last.StartsWith("+PONG", StringComparison.Ordinal) || last.StartsWith("-NOAUTH", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                last = e.Message;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"{Kind} did not answer PING on port {Port} within {timeout.TotalSeconds:0} s (last: {last}):\n{Output}");
    }
}

/// <summary>One redis-server and one Garnet shared by the tests of a class, each started on first use.</summary>
public sealed class RedisServersFixture : IAsyncLifetime
{
    private readonly Lock _gate = new();
    private readonly Dictionary<RedisServerKind, Task<RedisServerProcess>> _servers = [];

    public Task<RedisServerProcess> GetAsync(RedisServerKind kind)
    {
        lock (_gate)
        {
            if (!_servers.TryGetValue(kind, out var server))
            {
                _servers[kind] = server = RedisServerProcess.StartAsync(kind);
            }
            return server;
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        Task<RedisServerProcess>[] servers;
        lock (_gate)
        {
            servers = [.. _servers.Values];
        }
        foreach (var server in servers)
        {
            try
            {
                await (await server).DisposeAsync();
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException)
            {
                // It never started; StartAsync already killed it.
            }
        }
    }
}

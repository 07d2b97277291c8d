using System.Net.Sockets;
using System.Text;
using VllmStack.AppHost;
using VllmStack.Hosting.Builder;
using VllmStack.Hosting.Orchestration;
using VllmStack.Hosting.Redis;
using VllmStack.Hosting.Testing;

namespace VllmStack.Tests.Hosting;

/// <summary>AddRedis against real servers: redis-server from PATH and Garnet from the repository's tool manifest.</summary>
public sealed class RedisResourceTests
{
    // Garnet starts through `dotnet tool run`, a few seconds on a busy 2-core machine.
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static DistributedApplicationBuilder NewBuilder(params string[] args) =>
        DistributedApplicationTestingBuilder.CreateEmpty(typeof(AppModel).Assembly, args);

    [Theory]
    [InlineData(RedisMode.Server, "redis-server 7.")]
    [InlineData(RedisMode.Garnet, "Garnet 2.2.8 (dotnet tool)")]
    public async Task Serves_set_and_get_through_its_connection_string(RedisMode mode, string description)
    {
        using var cts = new CancellationTokenSource(Bound);
        var builder = NewBuilder();
        builder.AddRedis("cache").WithMode(mode);
        await using var app = builder.Build();
        await app.StartAsync(cts.Token);
        var snapshot = await app.WaitForResourceHealthyAsync("cache", cts.Token);

        Assert.StartsWith(description, snapshot.Description, StringComparison.Ordinal);
        Assert.Equal("Redis", snapshot.Kind);
        var connection = await app.GetConnectionStringAsync("cache", cts.Token);
        Assert.Matches(@"^127\.0\.0\.1:\d+$", connection);

        using var redis = await RawRedis.ConnectAsync(connection, cts.Token);
        Assert.Equal("OK", await redis.CommandAsync(cts.Token, "SET", "greeting", "héllo"));
        Assert.Equal("héllo", await redis.CommandAsync(cts.Token, "GET", "greeting"));
        Assert.Null(await redis.CommandAsync(cts.Token, "GET", "missing"));
    }

    [Theory]
    [InlineData(RedisMode.Server)]
    [InlineData(RedisMode.Garnet)]
    public async Task A_password_is_required_and_carried_in_the_connection_string(RedisMode mode)
    {
        using var cts = new CancellationTokenSource(Bound);
        var builder = NewBuilder("--Parameters:cache-password=s3cret-pw");
        var password = builder.AddParameter("cache-password", secret: true);
        builder.AddRedis("cache").WithMode(mode).WithPassword(password);
        await using var app = builder.Build();
        await app.StartAsync(cts.Token);
        await app.WaitForResourceHealthyAsync("cache", cts.Token);

        var connection = await app.GetConnectionStringAsync("cache", cts.Token);
        Assert.Matches(@"^127\.0\.0\.1:\d+,password=s3cret-pw$", connection);

        // Without AUTH the server refuses; with the password from the connection string it serves.
        var address = connection.Split(',')[0];
        using (var anonymous = await RawRedis.ConnectAsync(address, cts.Token))
        {
            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => anonymous.CommandAsync(cts.Token, "GET", "k"));
            Assert.Contains("NOAUTH", refused.Message, StringComparison.OrdinalIgnoreCase);
        }
        using var redis = await RawRedis.ConnectAsync(connection, cts.Token);
        Assert.Equal("OK", await redis.CommandAsync(cts.Token, "SET", "k", "v"));
        Assert.Equal("v", await redis.CommandAsync(cts.Token, "GET", "k"));
    }

    [Fact]
    public async Task A_resource_that_references_the_cache_gets_its_connection_string()
    {
        using var cts = new CancellationTokenSource(Bound);
        var builder = NewBuilder();
        var cache = builder.AddRedis("cache");
        builder.AddExecutable("probe", "/bin/sh", null, "-c", "echo \"cs=$ConnectionStrings__cache\"; sleep 30")
            .WithReference(cache)
            .WaitFor(cache);
        await using var app = builder.Build();
        await app.StartAsync(cts.Token);
        await app.WaitForResourceHealthyAsync("cache", cts.Token);

        var expected = "cs=" + await app.GetConnectionStringAsync("cache", cts.Token);
        while (!app.Logs.Read("probe").Any(l => l.Text == expected))
        {
            await Task.Delay(50, cts.Token);
        }
    }

    [Theory]
    [InlineData(RedisMode.Server)]
    [InlineData(RedisMode.Garnet)]
    public async Task Its_processes_are_gone_after_dispose(RedisMode mode)
    {
        using var cts = new CancellationTokenSource(Bound);
        var builder = NewBuilder();
        builder.AddRedis("cache").WithMode(mode);
        var app = builder.Build();
        int pid;
        int[] children;
        try
        {
            await app.StartAsync(cts.Token);
            await app.WaitForResourceHealthyAsync("cache", cts.Token);
            pid = app.Runtime.Get("cache")!.Replicas[0].ProcessId!.Value;
            // `dotnet tool run` starts Garnet as its child: that one must go too.
            children = ChildrenOf(pid);
            Assert.True(IsAlive(pid));
            Assert.True(mode != RedisMode.Garnet || children.Length > 0, "Garnet runs as a child of `dotnet tool run`.");
        }
        finally
        {
            await app.DisposeAsync();
        }

        foreach (var process in children.Prepend(pid))
        {
            while (IsAlive(process))
            {
                await Task.Delay(50, cts.Token);
            }
        }
    }

    [Fact]
    public async Task Detection_prefers_redis_server_then_garnet_then_a_container()
    {
        List<RedisMode> asked = [];
        Task<bool> Only(RedisMode mode, params RedisMode[] present)
        {
            asked.Add(mode);
            return Task.FromResult(present.Contains(mode));
        }

        Assert.Equal(RedisMode.Server, await RedisResource.ChooseAsync("cache", null, "/repo", m => Only(m, RedisMode.Server, RedisMode.Garnet)));
        Assert.Equal(new[] { RedisMode.Server }, asked);
        asked.Clear();

        Assert.Equal(RedisMode.Garnet, await RedisResource.ChooseAsync("cache", null, "/repo", m => Only(m, RedisMode.Garnet, RedisMode.Container)));
        Assert.Equal(new[] { RedisMode.Server, RedisMode.Garnet }, asked);

        Assert.Equal(RedisMode.Container, await RedisResource.ChooseAsync("cache", null, "/repo", m => Only(m, RedisMode.Container)));
        Assert.Equal(RedisMode.Garnet, await RedisResource.ChooseAsync("cache", RedisMode.Garnet, "/repo", m => Only(m, RedisMode.Server, RedisMode.Garnet)));
    }

    [Fact]
    public async Task Detection_says_what_to_install_when_nothing_can_run_it()
    {
        var none = await Assert.ThrowsAsync<InvalidOperationException>(() => RedisResource.ChooseAsync("cache", null, "/repo", _ => Task.FromResult(false)));
        Assert.Contains("apt-get install redis-server", none.Message, StringComparison.Ordinal);
        Assert.Contains("dotnet tool restore, in /repo", none.Message, StringComparison.Ordinal);
        Assert.Contains("docker or podman", none.Message, StringComparison.Ordinal);

        var noManifest = await Assert.ThrowsAsync<InvalidOperationException>(() => RedisResource.ChooseAsync("cache", RedisMode.Garnet, null, _ => Task.FromResult(false)));
        Assert.Contains("dotnet tool install garnet-server --version 2.2.8", noManifest.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_forced_mode_that_cannot_run_fails_to_start_with_the_reason()
    {
        using var cts = new CancellationTokenSource(Bound);
        var builder = NewBuilder();
        var cache = builder.AddRedis("cache").WithMode(RedisMode.Garnet);
        cache.Resource.ToolManifestDirectory = null;
        await using var app = builder.Build();
        await app.StartAsync(cts.Token);

        var failed = await app.Runtime.WaitForAsync("cache", s => s.State == ResourceState.FailedToStart, cts.Token);
        Assert.Contains("dotnet tool install garnet-server", failed.Replicas[0].Message, StringComparison.Ordinal);
    }

    private static bool IsAlive(int pid)
    {
        // A killed process may linger as a zombie until its parent reaps it: it no longer runs.
        var stat = $"/proc/{pid}/stat";
        if (!File.Exists(stat))
        {
            return false;
        }
        try
        {
            var text = File.ReadAllText(stat);
            return text[(text.LastIndexOf(')') + 2)..] is not ['Z' or 'X', ..];
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static int[] ChildrenOf(int pid) =>
        [.. Directory.EnumerateDirectories("/proc")
            .Select(Path.GetFileName)
            .Where(name => int.TryParse(name, out _))
            .Select(name => int.Parse(name!, System.Globalization.CultureInfo.InvariantCulture))
            .Where(child => ParentOf(child) == pid)];

    private static int? ParentOf(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after the command name: state, ppid, …
            var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Just enough of a RESP client to check a server from the outside: commands out, one reply in.</summary>
    private sealed class RawRedis : IDisposable
    {
        private readonly TcpClient _client;
        private readonly NetworkStream _stream;
        private readonly StreamReader _reader;

        private RawRedis(TcpClient client)
        {
            _client = client;
            _stream = client.GetStream();
            _reader = new StreamReader(_stream, new UTF8Encoding(false));
        }

        /// <summary>Connects to <c>host:port[,password=…]</c> and authenticates when a password is given.</summary>
        public static async Task<RawRedis> ConnectAsync(string connectionString, CancellationToken cancellationToken)
        {
            var parts = connectionString.Split(',', 2);
            var (host, port) = (parts[0][..parts[0].LastIndexOf(':')], int.Parse(parts[0][(parts[0].LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            var client = new TcpClient();
            await client.ConnectAsync(host, port, cancellationToken);
            var redis = new RawRedis(client);
            if (parts.Length == 2 && parts[1].StartsWith("password=", StringComparison.Ordinal))
            {
                Assert.Equal("OK", await redis.CommandAsync(cancellationToken, "AUTH", parts[1]["password=".Length..]));
            }
            return redis;
        }

        /// <summary>The reply as text (null for a null bulk string); an error reply throws.</summary>
        public async Task<string?> CommandAsync(CancellationToken cancellationToken, params string[] args)
        {
            var request = new StringBuilder().Append('*').Append(args.Length).Append("\r\n");
            foreach (var arg in args)
            {
                request.Append('$').Append(Encoding.UTF8.GetByteCount(arg)).Append("\r\n").Append(arg).Append("\r\n");
            }
            await _stream.WriteAsync(Encoding.UTF8.GetBytes(request.ToString()), cancellationToken);

            var line = await _reader.ReadLineAsync(cancellationToken) ?? throw new IOException("The server closed the connection.");
            switch (line[0])
            {
                case '+':
                    return line[1..];
                case '-':
                    throw new InvalidOperationException(line[1..]);
                case '$' when line == "$-1":
                    return null;
                case '$':
                    // Our values are single-line text, so the payload is the next line.
                    return await _reader.ReadLineAsync(cancellationToken);
                default:
                    return line;
            }
        }

        public void Dispose()
        {
            _reader.Dispose();
            _client.Dispose();
        }
    }
}

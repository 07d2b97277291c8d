using System.Net.Sockets;
using System.Text;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using VllmStack.Hosting.Redis;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Hosting;

/// <summary>
/// Redis where no container engine runs: <c>AddRedisServer</c> against real servers — redis-server from PATH and Garnet
/// from the repository's tool manifest — started by DCP through Aspire's testing builder.
/// </summary>
public sealed class RedisResourceTests
{
    // Garnet starts through `dotnet tool run`, a few seconds on a busy 2-core machine.
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    [Theory]
    [InlineData(RedisServerKind.RedisServer, "redis-server 7.")]
    [InlineData(RedisServerKind.Garnet, "Garnet 2.2.8 (dotnet tool)")]
    public async Task Serves_set_and_get_through_its_connection_string(RedisServerKind kind, string description)
    {
        using var cts = new CancellationTokenSource(Bound);
        using var builder = DistributedApplicationTestingBuilder.Create();
        builder.AddRedisServer("cache", kind);
        await using var app = await builder.BuildAsync(cts.Token);
        await app.StartAsync(cts.Token);
        var healthy = await app.ResourceNotifications.WaitForResourceHealthyAsync("cache", cts.Token);

        Assert.Equal("Redis", healthy.Snapshot.ResourceType);
        Assert.StartsWith(description, healthy.Snapshot.Properties.Single(p => p.Name == "redis.server").Value?.ToString(), StringComparison.Ordinal);
        var connection = await app.GetConnectionStringAsync("cache", cts.Token);
        Assert.Matches(@"^localhost:\d+$", connection);

        using var redis = await RawRedis.ConnectAsync(connection!, cts.Token);
        Assert.Equal("OK", await redis.CommandAsync(cts.Token, "SET", "greeting", "héllo"));
        Assert.Equal("héllo", await redis.CommandAsync(cts.Token, "GET", "greeting"));
        Assert.Null(await redis.CommandAsync(cts.Token, "GET", "missing"));
    }

    [Theory]
    [InlineData(RedisServerKind.RedisServer)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task A_password_is_required_and_carried_in_the_connection_string(RedisServerKind kind)
    {
        using var cts = new CancellationTokenSource(Bound);
        using var builder = DistributedApplicationTestingBuilder.Create("--Parameters:cache-password=s3cret-pw");
        var password = builder.AddParameter("cache-password", secret: true);
        builder.AddRedisServer("cache", kind).WithPassword(password);
        await using var app = await builder.BuildAsync(cts.Token);
        await app.StartAsync(cts.Token);
        await app.ResourceNotifications.WaitForResourceHealthyAsync("cache", cts.Token);

        var connection = await app.GetConnectionStringAsync("cache", cts.Token);
        Assert.Matches(@"^localhost:\d+,password=s3cret-pw$", connection);

        // Without AUTH the server refuses; with the password from the connection string it serves.
        using (var anonymous = await RawRedis.ConnectAsync(connection!.Split(',')[0], cts.Token))
        {
            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => anonymous.CommandAsync(cts.Token, "GET", "k"));
            Assert.Contains("NOAUTH", refused.Message, StringComparison.OrdinalIgnoreCase);
        }
        using var redis = await RawRedis.ConnectAsync(connection, cts.Token);
        Assert.Equal("OK", await redis.CommandAsync(cts.Token, "SET", "k", "v"));
        Assert.Equal("v", await redis.CommandAsync(cts.Token, "GET", "k"));
    }

    [Fact]
    public async Task A_resource_that_references_the_cache_gets_its_connection_string_and_waits_for_it()
    {
        using var cts = new CancellationTokenSource(Bound);
        using var builder = DistributedApplicationTestingBuilder.Create();
        var cache = builder.AddRedisServer("cache");
        builder.AddExecutable("probe", "/bin/sh", ".", "-c", "echo \"cs=$ConnectionStrings__cache host=$CACHE_HOST\"; sleep 30")
            .WithReference(cache)
            .WaitFor(cache);
        await using var app = await builder.BuildAsync(cts.Token);
        await app.StartAsync(cts.Token);
        await app.ResourceNotifications.WaitForResourceAsync("probe", KnownResourceStates.Running, cts.Token);

        var expected = $"cs={await app.GetConnectionStringAsync("cache", cts.Token)} host=localhost";
        List<string> lines;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!(lines = await app.LogsAsync("probe", cts.Token)).Contains(expected) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, cts.Token);
        }
        Assert.Contains(expected, lines);
    }

    [Theory]
    [InlineData(RedisServerKind.RedisServer)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Its_processes_are_gone_after_dispose(RedisServerKind kind)
    {
        using var cts = new CancellationTokenSource(Bound);
        using var builder = DistributedApplicationTestingBuilder.Create();
        builder.AddRedisServer("cache", kind);
        var app = await builder.BuildAsync(cts.Token);
        int[] processes;
        try
        {
            await app.StartAsync(cts.Token);
            await app.ResourceNotifications.WaitForResourceHealthyAsync("cache", cts.Token);
            var pid = app.ProcessId("cache")!.Value;
            // `dotnet tool run` starts Garnet as its child: that one must go too.
            processes = [pid, .. ProcessTree.Children(pid)];
            Assert.True(kind != RedisServerKind.Garnet || processes.Length > 1, "Garnet runs as a child of `dotnet tool run`.");
        }
        finally
        {
            await app.DisposeAsync();
        }
        var alive = await ProcessTree.WaitForExitAsync(processes, TimeSpan.FromSeconds(20));
        Assert.True(alive.Count == 0, $"still running: {ProcessTree.Describe(alive)}");
    }

    [Fact]
    public void Redis_is_aspires_own_container_when_publishing_and_a_local_server_where_no_container_engine_runs()
    {
        using var run = DistributedApplicationTestingBuilder.Create();
        Assert.IsType<RedisServerResource>(run.AddRedisWithLocalFallback("cache").Resource);

        var output = Path.Combine(Path.GetTempPath(), "vllmstack-redis-" + Guid.NewGuid().ToString("N")[..8]);
        using var publish = DistributedApplicationTestingBuilder.Create("--operation", "publish", "--output-path", output);
        Assert.IsType<RedisResource>(publish.AddRedisWithLocalFallback("cache").Resource);
    }

    [Fact]
    public void Detection_prefers_redis_server_and_says_what_to_install_when_nothing_can_run_it()
    {
        var repository = RepoPaths.Root;
        Assert.Equal(RedisServerKind.RedisServer, RedisServerBuilderExtensions.Detect("cache", null, repository).Kind);
        Assert.Equal(RedisServerKind.Garnet, RedisServerBuilderExtensions.Detect("cache", RedisServerKind.Garnet, repository).Kind);

        // Garnet asked for, and no tool manifest to run it from.
        var none = Assert.Throws<DistributedApplicationException>(() => RedisServerBuilderExtensions.Detect("cache", RedisServerKind.Garnet, null));
        Assert.Contains("Redis 'cache' cannot start", none.Message, StringComparison.Ordinal);
        Assert.Contains("dotnet tool restore", none.Message, StringComparison.Ordinal);
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

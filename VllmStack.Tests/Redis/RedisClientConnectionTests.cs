using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using VllmStack.Redis;

namespace VllmStack.Tests.Redis;

/// <summary>AUTH, timeouts, outages and reconnection, each test with servers of its own (they get killed).</summary>
public sealed class RedisClientConnectionTests
{
    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Auth_with_the_right_password_works_and_a_wrong_one_is_a_clear_error(RedisServerKind kind)
    {
        const string password = "s3cret-Pa55";
        await using var server = await RedisServerProcess.StartAsync(kind, password);

        await using (var client = new RedisClient(server.ClientOptions()))
        {
            Assert.True(await client.SetAsync("k", Utf8("v")));
            Assert.Equal("v", Encoding.UTF8.GetString((await client.GetAsync("k"))!));
        }

        // The connection-string form carries the password the same way.
        await using (var fromString = new RedisClient($"{server.Endpoint},password={password},connectTimeout=2000"))
        {
            Assert.Equal("v", Encoding.UTF8.GetString((await fromString.GetAsync("k"))!));
        }

        await using (var noPassword = new RedisClient(server.ClientOptions() with { Password = null }))
        {
            var error = await Assert.ThrowsAsync<RedisServerException>(() => noPassword.GetAsync("k"));
            Assert.Equal("NOAUTH", error.ErrorCode);
        }

        await using var wrong = new RedisClient(server.ClientOptions() with { Password = "not-the-password" });
        var rejected = await Assert.ThrowsAsync<RedisConnectionException>(() => wrong.GetAsync("k"));
        Assert.Contains(server.Endpoint, rejected.Message, StringComparison.Ordinal);
        Assert.Contains("AUTH was rejected", rejected.Message, StringComparison.Ordinal);
        Assert.Contains("WRONGPASS", rejected.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("not-the-password", rejected.Message, StringComparison.Ordinal);
        Assert.Equal("WRONGPASS", Assert.IsType<RedisServerException>(rejected.InnerException).ErrorCode);

        // Right after, the client backs off instead of hammering the server, and still says why.
        var again = await Assert.ThrowsAsync<RedisConnectionException>(() => wrong.GetAsync("k"));
        Assert.Contains("WRONGPASS", again.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Client_reconnects_after_the_server_is_killed_and_restarted(RedisServerKind kind)
    {
        var server = await RedisServerProcess.StartAsync(kind);
        RedisServerProcess? restarted = null;
        try
        {
            await using var client = new RedisClient(server.ClientOptions(commandTimeout: TimeSpan.FromSeconds(2)));
            Assert.True(await client.SetAsync("before", Utf8("1")));
            // Touch both connections so that both are open when the server dies.
            await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => client.PingAsync()));

            // Commands in flight when the server dies each end promptly: a reply, or a connection error.
            var value = new byte[64 * 1024];
            var flood = Enumerable.Range(0, 2_000).Select(i => i % 2 == 0 ? (Task)client.SetAsync("flood:" + i, value) : client.GetAsync("flood:" + (i - 1))).ToArray();
            await server.KillAsync();
            await Task.WhenAll(flood).WaitAsync(TimeSpan.FromSeconds(30)).ContinueWith(_ => { }, TaskScheduler.Default);
            Assert.All(flood, task => Assert.True(task.IsCompletedSuccessfully || task.Exception?.InnerException is RedisConnectionException,
                $"{task.Status}: {task.Exception?.InnerException}"));

            // While the server is down every command fails with a connection error naming the server, and fails fast.
            for (var i = 0; i < 6; i++)
            {
                var clock = Stopwatch.StartNew();
                var error = await Assert.ThrowsAsync<RedisConnectionException>(() => client.GetAsync("before"));
                Assert.Contains(server.Endpoint, error.Message, StringComparison.Ordinal);
                Assert.True(clock.Elapsed < client.Options.ConnectTimeout + TimeSpan.FromSeconds(1), $"failing took {clock.Elapsed}");
                await Task.Delay(50);
            }

            restarted = await server.StartAgainAsync();

            // The same client recovers on its own (bounded: back-off is at most a second).
            var recovery = Stopwatch.StartNew();
            while (true)
            {
                try
                {
                    await client.PingAsync();
                    break;
                }
                catch (RedisConnectionException) when (recovery.Elapsed < TimeSpan.FromSeconds(20))
                {
                    await Task.Delay(100);
                }
            }
            // The new server kept nothing (no persistence), and both connections work again.
            Assert.Null(await client.GetAsync("before"));
            var writes = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => client.SetAsync("after:" + i, Utf8("v" + i))));
            Assert.All(writes, Assert.True);
            Assert.Equal("v49", Encoding.UTF8.GetString((await client.GetAsync("after:49"))!));
        }
        finally
        {
            await server.DisposeAsync();
            if (restarted is not null)
            {
                await restarted.DisposeAsync();
            }
        }
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task A_command_without_a_reply_in_time_throws_RedisTimeoutException_and_the_client_recovers(RedisServerKind kind)
    {
        await using var server = await RedisServerProcess.StartAsync(kind);
        await using var client = new RedisClient(server.ClientOptions(commandTimeout: TimeSpan.FromMilliseconds(200)));
        await client.SetAsync("k", Utf8("v"));

        string command;
        object[] args;
        if (kind == RedisServerKind.Redis)
        {
            // DEBUG SLEEP stalls the whole server for 2 s.
            (command, args) = ("DEBUG", ["SLEEP", "2"]);
        }
        else
        {
            // Garnet refuses DEBUG unless started with --enable-debug-command, and has no DEBUG SLEEP even then;
            // a BLPOP on an empty list holds the reply back just the same (for this connection only).
            var debug = await Assert.ThrowsAsync<RedisServerException>(() => client.ExecuteAsync("DEBUG", "SLEEP", "2"));
            Assert.Contains("DEBUG", debug.ServerMessage, StringComparison.Ordinal);
            (command, args) = ("BLPOP", ["empty-list", "2"]);
        }

        var clock = Stopwatch.StartNew();
        var timeout = await Assert.ThrowsAsync<RedisTimeoutException>(() => client.ExecuteAsync(command, args));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1.8), $"the timeout fired after {clock.Elapsed}");
        Assert.Equal(command, timeout.Command);
        Assert.Equal(TimeSpan.FromMilliseconds(200), timeout.Timeout);
        Assert.Contains(server.Endpoint, timeout.Message, StringComparison.Ordinal);
        Assert.Contains("200 ms", timeout.Message, StringComparison.Ordinal);

        // The same client works again once the server answers again (redis-server sleeps 2 s in total).
        var recovery = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                Assert.Equal("v", Encoding.UTF8.GetString((await client.GetAsync("k"))!));
                break;
            }
            catch (Exception e) when (e is RedisTimeoutException or RedisConnectionException && recovery.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(100);
            }
        }
        var replies = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => client.IncrementByAsync("n", 1)));
        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), replies.Order());
    }

    [Fact]
    public async Task Nothing_listening_is_a_fast_connection_error_naming_the_endpoint()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        await using var client = new RedisClient(new RedisConnectionOptions { Host = "127.0.0.1", Port = port });

        var clock = Stopwatch.StartNew();
        var first = await Assert.ThrowsAsync<RedisConnectionException>(() => client.PingAsync());
        Assert.Contains($"127.0.0.1:{port}", first.Message, StringComparison.Ordinal);
        Assert.Contains("refused", first.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal($"127.0.0.1:{port}", first.Endpoint);

        // Many commands while down cost no connect storm: they fail at once with the last error.
        var all = await Task.WhenAll(Enumerable.Range(0, 200).Select(async _ =>
            await Assert.ThrowsAsync<RedisConnectionException>(() => client.GetAsync("k"))));
        Assert.All(all, e => Assert.Contains("refused", e.Message, StringComparison.OrdinalIgnoreCase));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"failing took {clock.Elapsed}");
    }

    [Fact]
    public async Task A_disposed_client_refuses_commands()
    {
        var client = new RedisClient(new RedisConnectionOptions { Host = "127.0.0.1", Port = 1 });
        await client.DisposeAsync();
        await client.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.PingAsync());
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Commands_in_flight_when_the_client_is_disposed_fail_with_a_connection_error(RedisServerKind kind)
    {
        await using var server = await RedisServerProcess.StartAsync(kind);
        var client = new RedisClient(server.ClientOptions(connections: 1));
        await client.PingAsync();
        var blocked = client.ExecuteAsync("BLPOP", ["empty-list", 5], TimeSpan.FromSeconds(10));
        await Task.Delay(100);
        await client.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        var error = await Assert.ThrowsAsync<RedisConnectionException>(() => blocked.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("closed", error.Message, StringComparison.Ordinal);
    }
}

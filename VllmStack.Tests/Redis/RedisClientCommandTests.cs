using System.Diagnostics;
using System.Text;
using VllmStack.Redis;

namespace VllmStack.Tests.Redis;

/// <summary>Every helper against a real redis-server and a real Garnet, shared by the tests of this class.</summary>
public sealed class RedisClientCommandTests(RedisServersFixture servers) : IClassFixture<RedisServersFixture>
{
    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static string Prefix() => "test:" + Guid.NewGuid().ToString("N")[..12] + ":";

    private async Task<RedisClient> ClientAsync(RedisServerKind kind, int connections = 2, int database = 0) =>
        new((await servers.GetAsync(kind)).ClientOptions(connections: connections, database: database));

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Strings_keys_and_expiry(RedisServerKind kind)
    {
        await using var client = await ClientAsync(kind);
        var p = Prefix();

        Assert.True(await client.PingAsync() >= TimeSpan.Zero);
        Assert.Null(await client.GetAsync(p + "missing"));

        Assert.True(await client.SetAsync(p + "a", Utf8("alpha")));
        Assert.Equal("alpha", Encoding.UTF8.GetString((await client.GetAsync(p + "a"))!));
        Assert.True(await client.SetAsync(p + "a", Utf8("alpha-2")));
        Assert.Equal("alpha-2", Encoding.UTF8.GetString((await client.GetAsync(p + "a"))!));

        // NX: only the first write wins.
        Assert.True(await client.SetAsync(p + "nx", Utf8("first"), onlyIfNotExists: true));
        Assert.False(await client.SetAsync(p + "nx", Utf8("second"), onlyIfNotExists: true));
        Assert.Equal("first", Encoding.UTF8.GetString((await client.GetAsync(p + "nx"))!));

        // Expiry with SET … PX, and with PEXPIRE; PTTL reads it back.
        Assert.True(await client.SetAsync(p + "ttl", Utf8("x"), expiry: TimeSpan.FromSeconds(100)));
        var ttl = await client.TimeToLiveAsync(p + "ttl");
        Assert.InRange(ttl!.Value, TimeSpan.FromSeconds(90), TimeSpan.FromSeconds(100));
        Assert.Null(await client.TimeToLiveAsync(p + "a"));
        Assert.True(await client.ExpireAsync(p + "a", TimeSpan.FromSeconds(50)));
        Assert.InRange((await client.TimeToLiveAsync(p + "a"))!.Value, TimeSpan.FromSeconds(40), TimeSpan.FromSeconds(50));
        Assert.False(await client.ExpireAsync(p + "missing", TimeSpan.FromSeconds(5)));
        Assert.True(await client.SetAsync(p + "short", Utf8("x"), expiry: TimeSpan.FromMilliseconds(50)));
        await WaitUntilAsync(async () => await client.GetAsync(p + "short") is null, "a 50 ms key to expire");

        Assert.Equal(2, await client.ExistsAsync(p + "a", p + "nx", p + "missing"));
        Assert.Equal(2, await client.ExistsAsync([p + "a", p + "a"], CancellationToken.None));

        Assert.Equal(5, await client.IncrementByAsync(p + "n", 5));
        Assert.Equal(2, await client.IncrementByAsync(p + "n", -3));
        Assert.Equal("2", Encoding.UTF8.GetString((await client.GetAsync(p + "n"))!));

        var values = await client.MultiGetAsync(p + "a", p + "missing", p + "n");
        Assert.Equal(3, values.Length);
        Assert.Equal("alpha-2", Encoding.UTF8.GetString(values[0]!));
        Assert.Null(values[1]);
        Assert.Equal("2", Encoding.UTF8.GetString(values[2]!));

        Assert.Equal(3, await client.DeleteAsync(p + "a", p + "nx", p + "n", p + "missing"));
        Assert.Equal(0, await client.ExistsAsync(p + "a", p + "nx", p + "n"));
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Hashes_sets_and_sorted_sets(RedisServerKind kind)
    {
        await using var client = await ClientAsync(kind);
        var p = Prefix();

        var hash = p + "hash";
        Assert.True(await client.HashSetAsync(hash, "f1", Utf8("one")));
        Assert.True(await client.HashSetAsync(hash, "f2", new byte[] { 0, 255, 13, 10 }));
        Assert.False(await client.HashSetAsync(hash, "f1", Utf8("uno")));
        Assert.Equal("uno", Encoding.UTF8.GetString((await client.HashGetAsync(hash, "f1"))!));
        Assert.Null(await client.HashGetAsync(hash, "nope"));
        Assert.Null(await client.HashGetAsync(p + "nohash", "f1"));
        var all = await client.HashGetAllAsync(hash);
        Assert.Equal(["f1", "f2"], all.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(new byte[] { 0, 255, 13, 10 }, all["f2"]);
        Assert.Empty(await client.HashGetAllAsync(p + "nohash"));
        var many = await client.HashGetManyAsync(hash, ["f2", "nope", "f1"]);
        Assert.Equal(3, many.Length);
        Assert.Equal(new byte[] { 0, 255, 13, 10 }, many[0]);
        Assert.Null(many[1]);
        Assert.Equal("uno", Encoding.UTF8.GetString(many[2]!));
        Assert.Equal([null, null], await client.HashGetManyAsync(p + "nohash", ["f1", "f2"]));
        var manyBatch = client.CreateBatch();
        var inBatch = manyBatch.HashGetManyAsync(hash, ["nope", "f1"]);
        await manyBatch.ExecuteAsync(CancellationToken.None);
        Assert.Equal([false, true], (await inBatch).Select(v => v is not null));
        Assert.Equal(1, await client.HashDeleteAsync(hash, "f1", "nope"));
        Assert.Equal(["f2"], (await client.HashGetAllAsync(hash)).Keys);

        var set = p + "set";
        Assert.Equal(3, await client.SetAddAsync(set, "engine-a", "engine-b", "engine-c"));
        Assert.Equal(1, await client.SetAddAsync(set, ["engine-c", "engine-d"], CancellationToken.None));
        Assert.Equal(["engine-a", "engine-b", "engine-c", "engine-d"], (await client.SetMembersAsync(set)).Order(StringComparer.Ordinal));
        Assert.Equal(2, await client.SetRemoveAsync(set, "engine-a", "engine-d", "engine-z"));
        Assert.Equal(["engine-b", "engine-c"], (await client.SetMembersAsync(set)).Order(StringComparer.Ordinal));
        Assert.Empty(await client.SetMembersAsync(p + "noset"));

        var zset = p + "zset";
        Assert.True(await client.SortedSetAddAsync(zset, "c", 3));
        Assert.True(await client.SortedSetAddAsync(zset, "a", -1.5));
        Assert.True(await client.SortedSetAddAsync(zset, "b", 2.25));
        Assert.True(await client.SortedSetAddAsync(zset, "big", 1e20));
        Assert.False(await client.SortedSetAddAsync(zset, "c", 2.5));
        Assert.Equal(["a", "b", "c", "big"], await client.SortedSetRangeByScoreAsync(zset));
        Assert.Equal(["b", "c"], await client.SortedSetRangeByScoreAsync(zset, 0, 2.5));
        Assert.Equal(["b"], await client.SortedSetRangeByScoreAsync(zset, offset: 1, count: 1));
        Assert.Equal(["c", "big"], await client.SortedSetRangeByScoreAsync(zset, 2.4, double.PositiveInfinity, offset: 0, count: 10));
        Assert.Equal(2, await client.SortedSetRemoveAsync(zset, "a", "big", "none"));
        Assert.Equal(["b", "c"], await client.SortedSetRangeByScoreAsync(zset));
        Assert.Empty(await client.SortedSetRangeByScoreAsync(p + "nozset"));
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Scan_info_and_generic_commands(RedisServerKind kind)
    {
        await using var client = await ClientAsync(kind);
        var p = Prefix();

        var expected = Enumerable.Range(0, 40).Select(i => $"{p}scan:{i}").ToHashSet();
        foreach (var key in expected)
        {
            await client.SetAsync(key, Utf8("v"));
        }
        await client.SetAsync(p + "other", Utf8("v"));
        var seen = new HashSet<string>();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            await foreach (var key in client.ScanAsync(p + "scan:*", pageSize: 7, cts.Token))
            {
                seen.Add(key);
            }
        }
        Assert.Equal(expected.Order(), seen.Order());

        var info = await client.InfoAsync("server");
        Assert.Contains("# Server", info, StringComparison.Ordinal);
        Assert.Contains(kind == RedisServerKind.Redis ? "redis_version:" : "garnet_version:", info, StringComparison.Ordinal);
        Assert.Contains("# ", await client.InfoAsync());

        // ExecuteAsync: strings, bytes, memory, keys and numbers as arguments, replies as they come.
        var echo = await client.ExecuteAsync("ECHO", new byte[] { 1, 2, 3 });
        Assert.Equal(RedisReplyKind.BulkString, echo.Kind);
        Assert.Equal(new byte[] { 1, 2, 3 }, echo.Bytes);
        Assert.Equal("PONG", (await client.ExecuteAsync("PING")).Text);
        Assert.Equal("OK", (await client.ExecuteAsync("SET", (RedisKey)(p + "g"), new ReadOnlyMemory<byte>(Utf8("12")))).Text);
        Assert.Equal(42, (await client.ExecuteAsync("INCRBY", p + "g", 30)).Integer);
        Assert.Equal(42.5, double.Parse((await client.ExecuteAsync("INCRBYFLOAT", p + "g", 0.5)).AsString()!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, (await client.ExecuteAsync("STRLEN", [p + "missing-too"], TimeSpan.FromSeconds(5), CancellationToken.None)).Integer);
        var mget = await client.ExecuteAsync("MGET", p + "g", p + "missing");
        Assert.Equal(RedisReplyKind.Array, mget.Kind);
        Assert.Equal("42.5", mget.Elements![0].AsString());
        Assert.True(mget.Elements[1].IsNull);
        Assert.Throws<ArgumentException>(() => { _ = client.ExecuteAsync("SET", p + "bad", true); });
        // Every command is bounded: an infinite timeout is refused rather than honoured.
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.ExecuteAsync("PING", [], Timeout.InfiniteTimeSpan));
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Values_and_keys_are_binary_safe(RedisServerKind kind)
    {
        await using var client = await ClientAsync(kind);
        var p = Prefix();

        var everyByte = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        Assert.True(await client.SetAsync(p + "bytes", everyByte));
        Assert.Equal(everyByte, await client.GetAsync(p + "bytes"));

        // CR LF inside values and keys must not confuse either side.
        var tricky = Utf8("\r\n$5\r\n*1\r\n+OK\r\n-ERR\r\n");
        Assert.True(await client.SetAsync(p + "tricky", tricky));
        Assert.Equal(tricky, await client.GetAsync(p + "tricky"));

        var binaryKey = Utf8(p).Concat(everyByte).ToArray();
        Assert.True(await client.SetAsync(binaryKey, Utf8("under a binary key")));
        Assert.Equal("under a binary key", Encoding.UTF8.GetString((await client.GetAsync(binaryKey))!));
        Assert.Equal(1, await client.ExistsAsync(binaryKey));

        Assert.True(await client.SetAsync(p + "empty", ReadOnlyMemory<byte>.Empty));
        Assert.Equal(Array.Empty<byte>(), await client.GetAsync(p + "empty"));

        Assert.True(await client.HashSetAsync(p + "h", "all", everyByte));
        Assert.Equal(everyByte, await client.HashGetAsync(p + "h", "all"));

        Assert.Equal("ключ ✓", Encoding.UTF8.GetString((await client.ExecuteAsync("ECHO", "ключ ✓")).Bytes!));
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Large_values_round_trip(RedisServerKind kind)
    {
        await using var client = await ClientAsync(kind);
        var p = Prefix();
        foreach (var size in new[] { 16 << 20, 64 << 20 })
        {
            var value = new byte[size];
            new Random(size).NextBytes(value);
            Assert.True(await client.SetAsync(p + size, value));
            var read = await client.GetAsync(p + size);
            Assert.NotNull(read);
            Assert.Equal(size, read.Length);
            Assert.True(value.AsSpan().SequenceEqual(read), $"{size} bytes came back different");
            Assert.Equal(1, await client.DeleteAsync(p + size));
        }
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Ten_thousand_concurrent_commands_are_pipelined_correctly(RedisServerKind kind)
    {
        await using var client = await ClientAsync(kind, connections: 2);
        var p = Prefix();
        const int count = 10_000;
        static byte[] ValueOf(int i) => Utf8($"value-{i}-" + new string((char)('a' + i % 26), i % 97));

        var sets = Enumerable.Range(0, count).Select(i => client.SetAsync(p + i, ValueOf(i))).ToArray();
        Assert.All(await Task.WhenAll(sets).WaitAsync(TimeSpan.FromSeconds(60)), Assert.True);

        var gets = Enumerable.Range(0, count).Select(i => client.GetAsync(p + i)).ToArray();
        var values = await Task.WhenAll(gets).WaitAsync(TimeSpan.FromSeconds(60));
        for (var i = 0; i < count; i++)
        {
            Assert.Equal(ValueOf(i), values[i]);
        }

        // Mixed command types in flight together still get their own replies.
        var mixed = Enumerable.Range(0, 2_000).Select(async i => (i % 3) switch
        {
            0 => Encoding.UTF8.GetString((await client.GetAsync(p + i))!) == Encoding.UTF8.GetString(ValueOf(i)),
            1 => await client.ExistsAsync(p + i, p + "none") == 1,
            _ => await client.IncrementByAsync(p + "counter", 1) > 0,
        }).ToArray();
        Assert.All(await Task.WhenAll(mixed).WaitAsync(TimeSpan.FromSeconds(60)), Assert.True);
        Assert.Equal(666, await client.IncrementByAsync(p + "counter", 0));
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Commands_are_spread_round_robin_over_the_connections_and_a_batch_stays_on_one(RedisServerKind kind)
    {
        await using var client = await ClientAsync(kind, connections: 3);

        // CLIENT ID tells which connection a command went over. The first round opens the three connections.
        var opening = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => client.ExecuteAsync("CLIENT", "ID")));
        Assert.InRange(opening.Select(reply => reply.Integer).Distinct().Count(), 1, 3);
        await WaitUntilAsync(async () =>
            (await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => client.ExecuteAsync("CLIENT", "ID")))).Select(r => r.Integer).Distinct().Count() == 3,
            "all three connections to be open");

        var ids = await Task.WhenAll(Enumerable.Range(0, 300).Select(_ => client.ExecuteAsync("CLIENT", "ID")));
        var perConnection = ids.GroupBy(reply => reply.Integer).Select(group => group.Count()).ToArray();
        Assert.Equal([100, 100, 100], perConnection);

        var batch = client.CreateBatch();
        var inBatch = Enumerable.Range(0, 50).Select(_ => batch.CommandAsync("CLIENT", "ID")).ToArray();
        await batch.ExecuteAsync();
        Assert.Single((await Task.WhenAll(inBatch)).Select(reply => reply.Integer).Distinct());
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Batch_sends_commands_together_and_reports_each_result(RedisServerKind kind)
    {
        await using var client = await ClientAsync(kind);
        var p = Prefix();

        var batch = client.CreateBatch();
        var sets = Enumerable.Range(0, 2_000).Select(i => batch.SetAsync(p + i, Utf8("chunk-" + i), TimeSpan.FromMinutes(5))).ToList();
        var counter = batch.IncrementByAsync(p + "count", 2_000);
        var hash = batch.HashSetAsync(p + "h", "f", Utf8("v"));
        var member = batch.SetAddAsync(p + "s", "m1", "m2");
        var scored = batch.SortedSetAddAsync(p + "z", "m", 1);
        var expire = batch.ExpireAsync(p + "h", TimeSpan.FromMinutes(1));
        Assert.Equal(2_005, batch.Count);
        Assert.False(sets[0].IsCompleted);
        await batch.ExecuteAsync(CancellationToken.None);
        Assert.All(await Task.WhenAll(sets), Assert.True);
        Assert.Equal(2_000, await counter);
        Assert.True(await hash);
        Assert.Equal(2, await member);
        Assert.True(await scored);
        Assert.True(await expire);
        await Assert.ThrowsAsync<InvalidOperationException>(() => batch.ExecuteAsync());

        var reads = client.CreateBatch();
        var gets = Enumerable.Range(0, 2_000).Select(i => reads.GetAsync(p + i)).ToList();
        var missing = reads.GetAsync(p + "missing");
        var wrongType = reads.IncrementByAsync(p + "h", 1);
        var exists = reads.ExistsAsync(p + "0", p + "1");
        var hget = reads.HashGetAsync(p + "h", "f");
        var echo = reads.CommandAsync("ECHO", "hi");
        var deleted = reads.DeleteAsync(p + "1999");
        await reads.ExecuteAsync(TimeSpan.FromSeconds(30));
        for (var i = 0; i < gets.Count; i++)
        {
            Assert.Equal("chunk-" + i, Encoding.UTF8.GetString((await gets[i])!));
        }
        Assert.Null(await missing);
        // An error reply fails only its own command, never the batch or its neighbours.
        var error = await Assert.ThrowsAsync<RedisServerException>(() => wrongType);
        Assert.Equal("WRONGTYPE", error.ErrorCode);
        Assert.Equal(2, await exists);
        Assert.Equal("v", Encoding.UTF8.GetString((await hget)!));
        Assert.Equal("hi", (await echo).AsString());
        Assert.Equal(1, await deleted);

        await client.CreateBatch().ExecuteAsync(); // an empty batch is a no-op
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Server_errors_become_RedisServerException_and_the_connection_stays_usable(RedisServerKind kind)
    {
        await using var client = await ClientAsync(kind, connections: 1);
        var p = Prefix();
        await client.SetAsync(p + "text", Utf8("not a number"));

        var notInteger = await Assert.ThrowsAsync<RedisServerException>(() => client.IncrementByAsync(p + "text", 1));
        Assert.Equal("INCRBY", notInteger.Command);
        Assert.Equal("ERR", notInteger.ErrorCode);
        Assert.Contains("not an integer", notInteger.ServerMessage, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(client.Options.Endpoint, notInteger.Message);

        await client.HashSetAsync(p + "hash", "f", Utf8("v"));
        var wrongType = await Assert.ThrowsAsync<RedisServerException>(() => client.GetAsync(p + "hash"));
        Assert.Equal("WRONGTYPE", wrongType.ErrorCode);

        var unknown = await Assert.ThrowsAsync<RedisServerException>(() => client.ExecuteAsync("NOSUCHCOMMAND", "x"));
        Assert.Contains("unknown command", unknown.ServerMessage, StringComparison.OrdinalIgnoreCase);

        // After three error replies the connection is still in step.
        Assert.Equal("not a number", Encoding.UTF8.GetString((await client.GetAsync(p + "text"))!));
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Cancelled_command_is_abandoned_and_later_replies_stay_in_order(RedisServerKind kind)
    {
        // One connection, so the commands after the cancelled one queue behind it on the same stream.
        await using var client = await ClientAsync(kind, connections: 1);
        var p = Prefix();
        await client.SetAsync(p + "k", Utf8("before"));

        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var clock = Stopwatch.StartNew();
        // BLPOP on an empty list holds the reply back for 2 s on the server.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => client.ExecuteAsync("BLPOP", [p + "empty-list", 2], TimeSpan.FromSeconds(10), cancel.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1.8), $"cancellation took {clock.Elapsed}");

        // The abandoned BLPOP reply (null) arrives first and is dropped; these get their own replies.
        Assert.True(await client.SetAsync(p + "k", Utf8("after")));
        Assert.Equal("after", Encoding.UTF8.GetString((await client.GetAsync(p + "k"))!));

        using var already = new CancellationTokenSource();
        await already.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetAsync(p + "k", already.Token));
        Assert.Equal("after", Encoding.UTF8.GetString((await client.GetAsync(p + "k"))!));
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task Database_select_isolates_keys(RedisServerKind kind)
    {
        await using var db0 = await ClientAsync(kind);
        await using var db1 = await ClientAsync(kind, database: 1);
        var key = Prefix() + "k";

        // Garnet 2.x has 16 databases like Redis (--max-databases), so SELECT 1 works on both.
        Assert.True(await db0.SetAsync(key, Utf8("zero")));
        Assert.True(await db1.SetAsync(key, Utf8("one")));
        Assert.Equal("zero", Encoding.UTF8.GetString((await db0.GetAsync(key))!));
        Assert.Equal("one", Encoding.UTF8.GetString((await db1.GetAsync(key))!));
        Assert.Equal(1, await db1.DeleteAsync(key));
        Assert.Null(await db1.GetAsync(key));
        Assert.Equal("zero", Encoding.UTF8.GetString((await db0.GetAsync(key))!));

        // Both servers have databases 0..15 by default; SELECT 16 fails the handshake with the server's own words.
        await using var db16 = await ClientAsync(kind, database: 16);
        var error = await Assert.ThrowsAsync<RedisConnectionException>(() => db16.PingAsync());
        Assert.Contains("SELECT 16 was rejected", error.Message, StringComparison.Ordinal);
        Assert.Contains("out of range", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.IsType<RedisServerException>(error.InnerException);
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(10))
            {
                throw new TimeoutException($"Waited 10 s for {what}.");
            }
            await Task.Delay(20);
        }
    }
}

using System.Net;
using System.Text.Json.Nodes;
using StackExchange.Redis;
using VllmStack.ServiceDefaults.Http;
using VllmStack.Tests.Infrastructure;
using VllmStack.Tests.Infrastructure.Redis;

namespace VllmStack.Tests.CacheServer;

/// <summary>
/// The cache server's pool against both Redis servers the stack runs on (redis-server and Garnet): what it writes, how
/// it connects (the Aspire connection string, a password) and what a crash mid-write leaves behind.
/// </summary>
public sealed class PoolRedisTests
{
    private const string Lru = "kv:lru";
    private const string Sizes = "kv:sizes";
    private const string Bytes = "kv:bytes";

    private static Task<ProgramProcess> StartCacheServerAsync(string connectionString) =>
        ProgramProcess.StartAsync("VllmStack.CacheServer", "CacheServer", ["--urls", "http://127.0.0.1:0"],
            new Dictionary<string, string> { ["ConnectionStrings__cache"] = connectionString });

    /// <summary>
    /// Batch puts from many clients at once, and the cache server killed (SIGKILL, by its PID) in the middle of them,
    /// several times over. Whatever was in flight, every chunk key in Redis has its size entry and its LRU entry, every
    /// size or LRU entry has its chunk, and the byte counter is the sum of the sizes. A put written in two round trips
    /// (chunks, then bookkeeping) leaves chunks without bookkeeping here; one script per put cannot.
    /// </summary>
    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task A_cache_server_killed_mid_load_leaves_every_chunk_with_its_bookkeeping_and_nothing_else(RedisServerKind kind)
    {
        await using var redis = await RedisServerProcess.StartAsync(kind);
        await using var inspector = await ConnectionMultiplexer.ConnectAsync($"{redis.Endpoint},connectTimeout=5000,syncTimeout=10000");
        var db = inspector.GetDatabase();
        var failedPuts = 0;
        var storedPuts = 0;
        var next = 0;
        // Each round two cache servers, each under puts from 24 clients, both killed at once: many chances per round
        // that a put is between two round trips at the moment of the kill.
        const int Rounds = 5;
        for (var round = 0; round < Rounds; round++)
        {
            var servers = await Task.WhenAll(StartCacheServerAsync(redis.Endpoint), StartCacheServerAsync(redis.Endpoint));
            using var stop = new CancellationTokenSource();
            var clients = servers.Select(s => new HttpClient { BaseAddress = s.BaseUrl, Timeout = TimeSpan.FromSeconds(30) }).ToArray();
            try
            {
                var workers = clients.SelectMany(http => Enumerable.Range(0, 24).Select(_ => Task.Run(async () =>
                {
                    var chunk = new byte[2048];
                    while (!stop.IsCancellationRequested)
                    {
                        var first = Interlocked.Add(ref next, 8) - 8;
                        var body = new MemoryStream();
                        await ChunkFraming.WriteKeyedAsync(body, [.. Enumerable.Range(first, 8).Select(i => ((ulong)i + 1, (ReadOnlyMemory<byte>)chunk))], default);
                        var content = new ByteArrayContent(body.ToArray());
                        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(ChunkFraming.ContentType);
                        try
                        {
                            using var response = await http.PostAsync("v1/kv/pool/put?model=m", content);
                            if (response.StatusCode == HttpStatusCode.OK)
                            {
                                Interlocked.Increment(ref storedPuts);
                            }
                        }
                        catch (HttpRequestException)
                        {
                            // The server was killed under this request.
                            Interlocked.Increment(ref failedPuts);
                            return;
                        }
                    }
                }))).ToArray();

                // Kill once puts are flowing, at a moment that differs from round to round.
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
                while (Volatile.Read(ref storedPuts) < (round + 1) * 40 && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(10);
                }
                await Task.Delay(Random.Shared.Next(0, 100));
                foreach (var server in servers)
                {
                    server.Kill();
                }
                await stop.CancelAsync();
                await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60));
            }
            finally
            {
                foreach (var http in clients)
                {
                    http.Dispose();
                }
                foreach (var server in servers)
                {
                    await server.DisposeAsync();
                }
            }
        }
        Assert.True(failedPuts > 0, "the kills interrupted puts in flight");

        // Scripts that reached Redis before the kill still run to their end; give them a moment.
        await Task.Delay(500);
        var server1 = inspector.GetServer(inspector.GetEndPoints()[0]);
        var chunks = new HashSet<string>();
        await foreach (var key in server1.KeysAsync(pattern: "kv:m:*", pageSize: 1000))
        {
            chunks.Add(key.ToString());
        }
        var sizes = (await db.HashGetAllAsync(Sizes)).ToDictionary(e => e.Name.ToString(), e => (long)e.Value);
        var lru = (await db.SortedSetRangeByRankAsync(Lru)).Select(m => m.ToString()).ToHashSet();
        Assert.True(chunks.Count >= Rounds * 40 * 8, $"{chunks.Count} chunks stored");
        Assert.Empty(chunks.Except(sizes.Keys));
        Assert.Empty(sizes.Keys.Except(chunks));
        Assert.Empty(chunks.Except(lru));
        Assert.Empty(lru.Except(chunks));
        Assert.All(sizes.Values, size => Assert.Equal(2048, size));
        Assert.Equal(sizes.Values.Sum(), (long)await db.StringGetAsync(Bytes));
    }

    [Theory]
    [InlineData(RedisServerKind.Redis)]
    [InlineData(RedisServerKind.Garnet)]
    public async Task The_aspire_connection_string_with_a_password_reaches_the_pool_and_a_wrong_password_degrades_it(RedisServerKind kind)
    {
        await using var redis = await RedisServerProcess.StartAsync(kind, password: "s3cret-pass");
        {
            await using var server = await StartCacheServerAsync($"{redis.Endpoint},password=s3cret-pass");
            using var http = new HttpClient { BaseAddress = server.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
            Assert.Equal("Healthy", await http.GetStringAsync("health"));
            var chunk = Enumerable.Range(0, 70_000).Select(i => (byte)i).ToArray();
            using (var put = await http.PutAsync("v1/kv/pool/m/00000000000000aa", new ByteArrayContent(chunk)))
            {
                Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            }
            Assert.Equal(chunk, await http.GetByteArrayAsync("v1/kv/pool/m/00000000000000aa"));
            var usage = JsonNode.Parse(await http.GetStringAsync("v1/kv/pool"))!;
            Assert.Equal((70_000L, 1L), (usage["bytes"]!.GetValue<long>(), usage["chunks"]!.GetValue<long>()));
            Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync("v1/kv/pool/m/00000000000000aa")).StatusCode);
            usage = JsonNode.Parse(await http.GetStringAsync("v1/kv/pool"))!;
            Assert.Equal((0L, 0L), (usage["bytes"]!.GetValue<long>(), usage["chunks"]!.GetValue<long>()));
        }
        {
            // The start does not wait on a Redis that refuses it; the pool is unavailable, the rest answers.
            await using var server = await StartCacheServerAsync($"{redis.Endpoint},password=wrong");
            using var http = new HttpClient { BaseAddress = server.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
            Assert.Equal("Degraded", await http.GetStringAsync("health"));
            using var put = await http.PutAsync("v1/kv/pool/m/00000000000000aa", new ByteArrayContent([1]));
            Assert.Equal(HttpStatusCode.Accepted, put.StatusCode);
        }
    }

    [Fact]
    public async Task A_redis_that_refuses_the_pools_scripts_makes_the_pool_unavailable_not_a_server_error()
    {
        // An external Garnet started without --lua answers PING but refuses every script.
        await using var redis = await RedisServerProcess.StartAsync(RedisServerKind.Garnet, lua: false);
        await using var server = await StartCacheServerAsync(redis.Endpoint);
        using var http = new HttpClient { BaseAddress = server.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };

        using (var put = await http.PutAsync("v1/kv/pool/m/00000000000000ab", new ByteArrayContent([1, 2, 3])))
        {
            Assert.Equal(HttpStatusCode.Accepted, put.StatusCode);
        }
        using (var get = await http.GetAsync("v1/kv/pool/m/00000000000000ab"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, get.StatusCode);
            Assert.True(get.Headers.RetryAfter is not null);
            Assert.Contains("scripting", JsonNode.Parse(await get.Content.ReadAsStringAsync())!["error"]!["message"]!.GetValue<string>(), StringComparison.OrdinalIgnoreCase);
        }
        var health = await http.GetStringAsync("health");
        Assert.Equal("Degraded", health);
    }

    [Theory]
    [InlineData("127.0.0.1:6379,colour=blue", "colour")]
    [InlineData("127.0.0.1:6379,connectTimeout=soon", "connectTimeout")]
    [InlineData("password=only", "host")]
    public async Task A_connection_string_that_cannot_work_stops_the_start_saying_why(string connectionString, string expected)
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => StartCacheServerAsync(connectionString));
        Assert.Contains("ConnectionStrings__cache", error.Message);
        Assert.Contains(expected, error.Message, StringComparison.OrdinalIgnoreCase);
    }
}

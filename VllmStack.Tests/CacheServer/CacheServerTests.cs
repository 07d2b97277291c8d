using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VllmStack.ServiceDefaults.Http;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;
using VllmStack.Tests.Infrastructure.Redis;

namespace VllmStack.Tests.CacheServer;

/// <summary>The cache server as a process, against a real redis-server, with EngineSim processes reporting to it.</summary>
public sealed class CacheServerTests
{
    private static async Task<(ProgramProcess Server, HttpClient Http)> StartAsync(RedisServerProcess redis, params string[] args)
    {
        var server = await ProgramProcess.StartAsync("VllmStack.CacheServer", "CacheServer", ["--urls", "http://127.0.0.1:0", .. args],
            new Dictionary<string, string> { ["ConnectionStrings__cache"] = redis.Endpoint });
        return (server, new HttpClient { BaseAddress = server.BaseUrl, Timeout = TimeSpan.FromSeconds(30) });
    }

    private static async Task<JsonNode> LookupAsync(HttpClient http, string model, int[] tokens)
    {
        using var response = await http.PostAsJsonAsync("v1/kv/lookup", new { model, tokens });
        response.EnsureSuccessStatusCode();
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }

    [Fact]
    public async Task Pool_round_trips_binary_chunks_and_keeps_within_its_byte_budget()
    {
        await using var redis = await RedisServerProcess.StartAsync(RedisServerKind.Redis);
        var (server, http) = await StartAsync(redis, "--CacheServer:PoolBudgetBytes=20000");
        await using var _ = server;
        using var __ = http;

        var chunk = new byte[4096];
        new Random(7).NextBytes(chunk);
        using (var put = await http.PutAsync("v1/kv/pool/m/0000000000000001", new ByteArrayContent(chunk)))
        {
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }
        using (var again = await http.PutAsync("v1/kv/pool/m/0000000000000001", new ByteArrayContent(chunk)))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }
        Assert.Equal(chunk, await http.GetByteArrayAsync("v1/kv/pool/m/0000000000000001"));
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("v1/kv/pool/other-model/0000000000000001")).StatusCode);
        using (var many = await http.PostAsJsonAsync("v1/kv/pool/get", new { model = "m", hashes = new[] { "0000000000000001", "00000000000000ff" } }))
        {
            Assert.Equal(ChunkFraming.ContentType, many.Content.Headers.ContentType?.MediaType);
            var chunks = await ChunkFraming.ReadAsync(await many.Content.ReadAsStreamAsync(), 2, default);
            Assert.Equal(chunk, chunks[0]);
            Assert.Null(chunks[1]);
        }
        // Model names with a slash travel escaped in the path and name the same chunk.
        using (var slashed = await http.PutAsync($"v1/kv/pool/{Uri.EscapeDataString("org/model")}/0000000000000001", new ByteArrayContent([9])))
        {
            Assert.Equal(HttpStatusCode.Created, slashed.StatusCode);
        }
        using (var slashedMany = await http.PostAsJsonAsync("v1/kv/pool/get", new { model = "org/model", hashes = new[] { "0000000000000001" } }))
        {
            Assert.Equal([9], (await ChunkFraming.ReadAsync(await slashedMany.Content.ReadAsStreamAsync(), 1, default))[0]);
        }

        // Four 4 KiB chunks fit a 20,000-byte budget; the fifth evicts the least recently used, which is chunk 2
        // because chunk 1 was just read.
        for (var i = 2; i <= 4; i++)
        {
            using var put = await http.PutAsync($"v1/kv/pool/m/{i:x16}", new ByteArrayContent(chunk));
            put.EnsureSuccessStatusCode();
        }
        await http.GetByteArrayAsync("v1/kv/pool/m/0000000000000001");
        using (var fifth = await http.PutAsync("v1/kv/pool/m/0000000000000005", new ByteArrayContent(chunk)))
        {
            fifth.EnsureSuccessStatusCode();
        }
        using var exists = await http.PostAsJsonAsync("v1/kv/pool/exists", new { model = "m", hashes = new[] { 1, 2, 3, 5 }.Select(i => i.ToString("x16")).ToArray() });
        var flags = JsonNode.Parse(await exists.Content.ReadAsStringAsync())!["exists"]!.AsArray().Select(e => e!.GetValue<bool>()).ToArray();
        Assert.Equal([true, false, true, true], flags);

        for (var i = 6; i <= 11; i++)
        {
            using var put = await http.PutAsync($"v1/kv/pool/m/{i:x16}", new ByteArrayContent(chunk));
            put.EnsureSuccessStatusCode();
        }
        var usage = JsonNode.Parse(await http.GetStringAsync("v1/kv/pool"))!;
        Assert.True(usage["bytes"]!.GetValue<long>() <= 20000, usage.ToJsonString());
        Assert.Equal(4, usage["chunks"]!.GetValue<long>());
        IReadOnlyList<PrometheusSample> metrics;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        do
        {
            // The size gauges are refreshed every 2 s.
            await Task.Delay(200);
            metrics = PrometheusTextParser.Parse(await http.GetStringAsync("metrics"));
        }
        while (metrics.Sum("vllmstack:kv_pool_chunks") != 4 && DateTime.UtcNow < deadline);
        Assert.True(metrics.Sum("vllmstack:kv_pool_evictions_total") >= 6);
        Assert.Equal(4, metrics.Sum("vllmstack:kv_pool_chunks"));
        Assert.InRange(metrics.Sum("vllmstack:kv_pool_bytes"), 4 * 4096, 20000);

        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync("v1/kv/pool/m/000000000000000b")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.DeleteAsync("v1/kv/pool/m/000000000000000b")).StatusCode);
    }

    private static async Task<HttpResponseMessage> PutManyAsync(HttpClient http, string model, params (ulong Hash, byte[] Chunk)[] chunks)
    {
        var body = new MemoryStream();
        await ChunkFraming.WriteKeyedAsync(body, [.. chunks.Select(c => (c.Hash, (ReadOnlyMemory<byte>)c.Chunk))], default);
        return await http.PostAsync($"v1/kv/pool/put?model={Uri.EscapeDataString(model)}", Framed(body.ToArray()));
    }

    private static ByteArrayContent Framed(byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(ChunkFraming.ContentType);
        return content;
    }

    [Fact]
    public async Task Batch_put_stores_many_chunks_in_one_request_including_ones_over_kestrels_default_body_limit()
    {
        await using var redis = await RedisServerProcess.StartAsync(RedisServerKind.Redis);
        var (server, http) = await StartAsync(redis);
        await using var _ = server;
        using var __ = http;

        var random = new Random(11);
        var small = Enumerable.Range(1, 40).Select(i => ((ulong)i, RandomBytes(random, 1000 + i))).ToArray();
        // 40 MB: above Kestrel's 30 MB default request limit, within the pool's own per-chunk limit.
        var large = ((ulong)0xabcdef, RandomBytes(random, 40_000_000));
        using (var put = await PutManyAsync(http, "org/m", [.. small, large]))
        {
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
            var answer = JsonNode.Parse(await put.Content.ReadAsStringAsync())!;
            Assert.Equal(41, answer["stored"]!.GetValue<int>());
            Assert.Equal(0, answer["present"]!.GetValue<int>());
        }
        using (var again = await PutManyAsync(http, "org/m", small[0], ((ulong)99, [7])))
        {
            var answer = JsonNode.Parse(await again.Content.ReadAsStringAsync())!;
            Assert.Equal((1, 1, 0), (answer["stored"]!.GetValue<int>(), answer["present"]!.GetValue<int>(), answer["dropped"]!.GetValue<int>()));
        }
        Assert.Equal(small[17].Item2, await http.GetByteArrayAsync($"v1/kv/pool/{Uri.EscapeDataString("org/m")}/{18:x16}"));
        Assert.Equal(large.Item2, await http.GetByteArrayAsync($"v1/kv/pool/{Uri.EscapeDataString("org/m")}/{0xabcdef:x16}"));
        var usage = JsonNode.Parse(await http.GetStringAsync("v1/kv/pool"))!;
        Assert.Equal(small.Sum(c => c.Item2.Length) + 40_000_000 + 1, usage["bytes"]!.GetValue<long>());
        Assert.Equal(42, usage["chunks"]!.GetValue<long>());
        // Lookups see batch-put chunks as pooled leading blocks.
        using var exists = await http.PostAsJsonAsync("v1/kv/pool/exists", new { model = "org/m", hashes = new[] { 1, 40, 41, 99 }.Select(i => i.ToString("x16")).ToArray() });
        Assert.Equal([true, true, false, true], JsonNode.Parse(await exists.Content.ReadAsStringAsync())!["exists"]!.AsArray().Select(e => e!.GetValue<bool>()));

        // Broken framing, a missing model or the wrong content type: 400 with an OpenAI-style error, nothing stored.
        var cut = new MemoryStream();
        await ChunkFraming.WriteKeyedAsync(cut, [(5ul, new byte[100])], default);
        var (s1, b1) = await SendAsync(http, "v1/kv/pool/put?model=x", Framed(cut.ToArray()[..50]));
        Assert.Equal(400, s1);
        Assert.Contains("cut short", b1!["error"]!["message"]!.GetValue<string>());
        var (s2, b2) = await SendAsync(http, "v1/kv/pool/put", Framed(cut.ToArray()));
        Assert.Equal((400, "model"), (s2, b2!["error"]!["param"]!.GetValue<string>()));
        var (s3, _) = await SendAsync(http, "v1/kv/pool/put?model=x", new ByteArrayContent(cut.ToArray()));
        Assert.Equal(400, s3);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("v1/kv/pool/x/0000000000000005")).StatusCode);
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static async Task<(int Status, JsonNode? Body)> SendAsync(HttpClient http, string path, HttpContent content)
    {
        using var response = await http.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length > 0 ? JsonNode.Parse(text) : null);
    }

    [Fact]
    public async Task Engines_report_their_blocks_and_lookups_find_who_holds_a_prefix_until_the_engine_departs()
    {
        await using var redis = await RedisServerProcess.StartAsync(RedisServerKind.Redis);
        var (server, http) = await StartAsync(redis, "--CacheServer:EngineTtlSeconds=2");
        await using var _ = server;
        using var __ = http;
        var engine = await EngineSimProcess.StartAsync(["--latency-preset", "instant", "--kv-cache-server", server.BaseUrl.ToString()]);
        try
        {
            var prompt = string.Join(' ', Enumerable.Range(0, 200).Select(i => $"word{i % 17}"));
            var (status, _) = await OpenAiHttp.PostJsonAsync(engine.Http, "v1/completions", new { model = EngineSimProcess.DefaultModel, prompt, max_tokens = 2 });
            Assert.Equal(200, status);
            var (_, tokenized) = await OpenAiHttp.PostJsonAsync(engine.Http, "tokenize", new { model = EngineSimProcess.DefaultModel, prompt });
            var tokens = tokenized!["tokens"]!.AsArray().Select(t => t!.GetValue<int>()).ToArray();
            var engineId = engine.BaseUrl.ToString().TrimEnd('/');

            JsonNode lookup;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            do
            {
                lookup = await LookupAsync(http, EngineSimProcess.DefaultModel, tokens);
                await Task.Delay(50);
            }
            while (lookup["engines"]!.AsArray().Count == 0 && DateTime.UtcNow < deadline);

            var match = Assert.Single(lookup["engines"]!.AsArray())!;
            Assert.Equal(engineId, match["engine"]!.GetValue<string>());
            Assert.Equal(tokens.Length / 16 * 16, match["tokens"]!.GetValue<int>());
            var other = await LookupAsync(http, "another-model", tokens);
            Assert.Empty(other["engines"]!.AsArray());

            engine.Kill();
            deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            do
            {
                lookup = await LookupAsync(http, EngineSimProcess.DefaultModel, tokens);
                await Task.Delay(200);
            }
            while (lookup["engines"]!.AsArray().Count > 0 && DateTime.UtcNow < deadline);
            Assert.Empty(lookup["engines"]!.AsArray());
        }
        finally
        {
            await engine.DisposeAsync();
        }
    }

    /// <summary>
    /// A lookup that outlives its short bound because Redis is busy (here a script that holds it for four seconds —
    /// under Redis's five-second busy-script limit —, as a burst of puts can) answers without the pool, and that is all:
    /// the breaker stays closed, so a put sent right after is stored once Redis is free, not dropped, and the pool stays
    /// healthy. Redis busy is not Redis down.
    /// </summary>
    [Fact]
    public async Task A_lookup_over_its_bound_on_a_busy_redis_does_not_take_the_pool_out_of_service()
    {
        await using var redis = await RedisServerProcess.StartAsync(RedisServerKind.Redis);
        // Commands other than lookups may wait out the hold.
        var (server, http) = await StartAsync(redis, "--CacheServer:RedisCommandTimeoutMs=20000");
        await using var _ = server;
        using var __ = http;
        await using var busy = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync($"{redis.Endpoint},syncTimeout=20000,asyncTimeout=20000");
        Assert.Equal("Healthy", await http.GetStringAsync("health"));
        // Warm: the first lookup and put of a fresh process must not be what makes them slow below.
        await LookupAsync(http, "m", [.. Enumerable.Range(0, 64)]);
        using (var warm = await http.PutAsync("v1/kv/pool/m/00000000000000ff", new ByteArrayContent([9])))
        {
            Assert.Equal(HttpStatusCode.Created, warm.StatusCode);
        }

        // Redis runs one script at a time and nothing else meanwhile.
        var hold = busy.GetDatabase().ScriptEvaluateAsync(
            "local t = redis.call('TIME'); local until_us = t[1] * 1000000 + t[2] + 4000000; " +
            "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= until_us; return 1");
        await Task.Delay(300);
        var lookup = await LookupAsync(http, "m", [.. Enumerable.Range(0, 64)]);
        Assert.Equal(0, lookup["pool_tokens"]!.GetValue<int>());
        Assert.True(lookup["pool_available"]!.GetValue<bool>());
        using (var put = await http.PutAsync("v1/kv/pool/m/0000000000000001", new ByteArrayContent([1, 2, 3])))
        {
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }
        await hold;
        var metrics = PrometheusTextParser.Parse(await http.GetStringAsync("metrics"));
        Assert.True(metrics.Sum("vllmstack:kv_pool_operations_total", ("operation", "leading"), ("result", "timeout")) >= 1, "the lookup met the busy Redis");
        Assert.Equal(0, metrics.Sum("vllmstack:kv_pool_dropped_puts_total"));
        Assert.Equal("Healthy", await http.GetStringAsync("health"));
    }

    [Fact]
    public async Task Redis_down_means_fast_answers_and_dropped_puts_and_it_recovers_without_a_restart()
    {
        var redis = await RedisServerProcess.StartAsync(RedisServerKind.Redis);
        var (server, http) = await StartAsync(redis);
        await using var _ = server;
        using var __ = http;
        try
        {
            Assert.Equal("Healthy", await http.GetStringAsync("health"));
            await redis.KillAsync();

            var tokens = Enumerable.Range(0, 64).ToArray();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var lookup = await LookupAsync(http, "m", tokens);
            lookup = await LookupAsync(http, "m", tokens);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"two lookups took {clock.Elapsed}");
            Assert.Equal(0, lookup["pool_tokens"]!.GetValue<int>());
            Assert.False(lookup["pool_available"]!.GetValue<bool>());
            using (var dropped = await http.PutAsync("v1/kv/pool/m/0000000000000001", new ByteArrayContent([1, 2, 3])))
            {
                Assert.Equal(HttpStatusCode.Accepted, dropped.StatusCode);
            }
            using (var droppedMany = await PutManyAsync(http, "m", (1ul, [1]), (2ul, [2])))
            {
                Assert.Equal(HttpStatusCode.Accepted, droppedMany.StatusCode);
                Assert.Equal(2, JsonNode.Parse(await droppedMany.Content.ReadAsStringAsync())!["dropped"]!.GetValue<int>());
            }
            using (var read = await http.GetAsync("v1/kv/pool/m/0000000000000001"))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, read.StatusCode);
                Assert.NotNull(read.Headers.RetryAfter);
            }
            Assert.Equal("Degraded", await http.GetStringAsync("health"));
            Assert.True(PrometheusTextParser.Parse(await http.GetStringAsync("metrics")).Sum("vllmstack:kv_pool_dropped_puts_total") >= 1);

            redis = await redis.StartAgainAsync();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            HttpStatusCode status;
            do
            {
                await Task.Delay(250);
                using var put = await http.PutAsync("v1/kv/pool/m/0000000000000001", new ByteArrayContent([1, 2, 3]));
                status = put.StatusCode;
            }
            while (status != HttpStatusCode.Created && DateTime.UtcNow < deadline);
            Assert.Equal(HttpStatusCode.Created, status);
            Assert.Equal([1, 2, 3], await http.GetByteArrayAsync("v1/kv/pool/m/0000000000000001"));
        }
        finally
        {
            await redis.DisposeAsync();
        }
    }

    [Fact]
    public async Task Bad_requests_get_openai_style_errors_and_a_missing_connection_string_stops_the_start()
    {
        await using var redis = await RedisServerProcess.StartAsync(RedisServerKind.Redis);
        var (server, http) = await StartAsync(redis);
        await using var _ = server;
        using var __ = http;

        var (s1, b1) = await OpenAiHttp.PostJsonAsync(http, "v1/kv/events", new { engine = "e", stored = new[] { "not-hex" } });
        Assert.Equal(400, s1);
        Assert.Equal("stored", b1!["error"]!["param"]!.GetValue<string>());
        var (s2, b2) = await OpenAiHttp.PostJsonAsync(http, "v1/kv/lookup", new { model = "m" });
        Assert.Equal(400, s2);
        Assert.Equal("tokens", b2!["error"]!["param"]!.GetValue<string>());
        var (s3, _) = await OpenAiHttp.PostRawAsync(http, "v1/kv/lookup", "{broken");
        Assert.Equal(400, s3);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("v1/kv/pool/m/xyz")).StatusCode);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            ProgramProcess.StartAsync("VllmStack.CacheServer", "CacheServer", ["--urls", "http://127.0.0.1:0"]));
        Assert.Contains("ConnectionStrings__cache", error.Message);
    }
}

using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;
using VllmStack.Tests.Infrastructure.Redis;

namespace VllmStack.Tests.CacheServer;

/// <summary>Tests that compare latencies between runs: kept out of the parallel pack, where CPU contention would decide them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TimingSensitive
{
    public const string Name = "timing-sensitive";
}

/// <summary>The shared pool's point: KV one engine computed and evicted is fetched by another instead of recomputed.</summary>
[Collection(TimingSensitive.Name)]
public sealed class KvPoolNetworkTests
{
    [Fact]
    public async Task A_prompt_evicted_by_one_engine_is_fetched_from_the_pool_by_another_with_a_lower_ttft()
    {
        await using var redis = await RedisServerProcess.StartAsync(RedisServerKind.Redis);
        await using var cacheServer = await ProgramProcess.StartAsync("VllmStack.CacheServer", "CacheServer", ["--urls", "http://127.0.0.1:0"],
            new Dictionary<string, string> { ["ConnectionStrings__cache"] = redis.Endpoint });
        // A small cache (300 blocks of 16 tokens) so that later long prompts evict the first; prefill 0.5 ms per prompt token
        // against ~10 µs per token to transfer from the pool.
        string[] args = ["--latency-preset", "fast", "--prefill-time-per-token-ms", "0.5", "--num-gpu-blocks", "300", "--max-model-len", "4096",
            "--kv-cache-server", cacheServer.BaseUrl.ToString(), "--kv-offload"];
        var engines = await Task.WhenAll(EngineSimProcess.StartAsync(args), EngineSimProcess.StartAsync(args));
        var (first, second) = (engines[0], engines[1]);
        try
        {
            var prompt = EngineSimPrompts.Long(3000, seed: 1);
            var other = EngineSimPrompts.Long(3000, seed: 2);
            var third = EngineSimPrompts.Long(3000, seed: 3);
            object Request(string text) => new { model = EngineSimProcess.DefaultModel, prompt = text, max_tokens = 2, stream = true };

            var computed = await OpenAiHttp.StreamAsync(first.Http, "v1/completions", Request(prompt));
            // Two more long prompts push all of the first out of the small cache (its tail goes first, its prefix last).
            await OpenAiHttp.StreamAsync(first.Http, "v1/completions", Request(other));
            await OpenAiHttp.StreamAsync(first.Http, "v1/completions", Request(third));
            using var pool = new HttpClient { BaseAddress = cacheServer.BaseUrl };
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while ((System.Text.Json.Nodes.JsonNode.Parse(await pool.GetStringAsync("v1/kv/pool"))!["chunks"]!.GetValue<long>()) < 190 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }

            var fetched = await OpenAiHttp.StreamAsync(second.Http, "v1/completions", Request(prompt));
            var metrics = await second.MetricsAsync();
            Assert.True(metrics.Sum("vllm:external_prefix_cache_hits_total") >= 2500, "the second engine fetched most of the prompt from the pool");
            Assert.Equal(0, metrics.Sum("vllm:prefix_cache_hits_total"));
            Assert.True(fetched.TimeToFirstToken * 3 < computed.TimeToFirstToken,
                $"TTFT {fetched.TimeToFirstToken.TotalMilliseconds:F0} ms from the pool vs {computed.TimeToFirstToken.TotalMilliseconds:F0} ms computed");
        }
        finally
        {
            foreach (var engine in engines)
            {
                await engine.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task An_engine_holding_only_the_shared_system_prompt_fetches_the_rest_of_a_moved_conversation_from_the_pool()
    {
        await using var redis = await RedisServerProcess.StartAsync(RedisServerKind.Redis);
        await using var cacheServer = await ProgramProcess.StartAsync("VllmStack.CacheServer", "CacheServer", ["--urls", "http://127.0.0.1:0"],
            new Dictionary<string, string> { ["ConnectionStrings__cache"] = redis.Endpoint });
        string[] args = ["--latency-preset", "instant", "--num-gpu-blocks", "300", "--max-model-len", "4096",
            "--kv-cache-server", cacheServer.BaseUrl.ToString(), "--kv-offload"];
        var engines = await Task.WhenAll(EngineSimProcess.StartAsync(args), EngineSimProcess.StartAsync(args));
        var (first, second) = (engines[0], engines[1]);
        try
        {
            var system = EngineSimPrompts.Long(1000, seed: 10) + "\n";
            object Request(string text) => new { model = EngineSimProcess.DefaultModel, prompt = text, max_tokens = 2, stream = true };
            var conversation = system + EngineSimPrompts.Long(2000, seed: 11);

            // The first engine serves the conversation, then two other users of the same system prompt push the
            // conversation's own blocks out (the system prompt stays: every request touches it).
            await OpenAiHttp.StreamAsync(first.Http, "v1/completions", Request(conversation));
            await OpenAiHttp.StreamAsync(first.Http, "v1/completions", Request(system + EngineSimPrompts.Long(2000, seed: 12)));
            await OpenAiHttp.StreamAsync(first.Http, "v1/completions", Request(system + EngineSimPrompts.Long(2000, seed: 13)));
            using var pool = new HttpClient { BaseAddress = cacheServer.BaseUrl };
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while ((System.Text.Json.Nodes.JsonNode.Parse(await pool.GetStringAsync("v1/kv/pool"))!["chunks"]!.GetValue<long>()) < 120 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }

            // The second engine has the system prompt from another user; the conversation moves to it.
            await OpenAiHttp.StreamAsync(second.Http, "v1/completions", Request(system + EngineSimPrompts.Long(500, seed: 14)));
            var before = await second.MetricsAsync();
            await OpenAiHttp.StreamAsync(second.Http, "v1/completions", Request(conversation));
            var after = await second.MetricsAsync();
            var local = after.Sum("vllm:prefix_cache_hits_total") - before.Sum("vllm:prefix_cache_hits_total");
            var pooled = after.Sum("vllm:external_prefix_cache_hits_total") - before.Sum("vllm:external_prefix_cache_hits_total");
            Assert.InRange(local, 950, 1020);
            Assert.True(pooled >= 1900, $"{pooled} tokens came from the pool after {local} local ones");
        }
        finally
        {
            foreach (var engine in engines)
            {
                await engine.DisposeAsync();
            }
        }
    }
}

/// <summary>Long English-like prompts of a given size in the simulator's tokens.</summary>
internal static class EngineSimPrompts
{
    public static string Long(int tokens, int seed) =>
        VllmStack.Tests.EngineSim.Integration.EngineModelTests.LongPrompt(tokens, seed);
}

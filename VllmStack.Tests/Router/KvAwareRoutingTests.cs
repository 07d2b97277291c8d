using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;
using VllmStack.Tests.Infrastructure.Redis;

namespace VllmStack.Tests.Router;

/// <summary>The KV-cache network end to end: Redis, the cache server, two engines reporting to it, and the router's kvaware policy.</summary>
public sealed class KvAwareRoutingTests
{
    private const string Model = EngineSimProcess.DefaultModel;

    private static async Task<Dictionary<string, double>> ServedAsync(params EngineSimProcess[] engines)
    {
        var served = new Dictionary<string, double>();
        foreach (var engine in engines)
        {
            served[engine.BaseUrl.ToString()] = (await engine.MetricsAsync()).Sum("vllm:request_success_total");
        }
        return served;
    }

    private static async Task<string> ServedByAsync(Func<Task> request, params EngineSimProcess[] engines)
    {
        var before = await ServedAsync(engines);
        await request();
        var after = await ServedAsync(engines);
        return Assert.Single(after, kv => kv.Value > before[kv.Key]).Key;
    }

    [Fact]
    public async Task Conversations_stick_to_the_engine_holding_their_kv_and_move_when_it_is_overloaded()
    {
        await using var redis = await RedisServerProcess.StartAsync(RedisServerKind.Redis);
        await using var cacheServer = await ProgramProcess.StartAsync("VllmStack.CacheServer", "CacheServer", ["--urls", "http://127.0.0.1:0"],
            new Dictionary<string, string> { ["ConnectionStrings__cache"] = redis.Endpoint });
        string[] engineArgs = ["--latency-preset", "fast", "--inter-token-latency-ms", "2", "--kv-cache-server", cacheServer.BaseUrl.ToString()];
        var engines = await Task.WhenAll(EngineSimProcess.StartAsync(engineArgs), EngineSimProcess.StartAsync(engineArgs));
        try
        {
            await using var router = await RouterProcess.StartAsync(
                ["--static-backends", string.Join(',', engines.Select(e => e.BaseUrl)), "--routing-logic", "kvaware", "--cache-server", cacheServer.BaseUrl.ToString(),
                 // This test is about where requests go, not how fast lookups are: a loaded CI machine must not turn it into a fallback test.
                 "--Router:KvAware:LookupTimeoutMs=5000"]);
            await router.WaitForEnginesAsync(e => e.Count(x => x!["routable"]!.GetValue<bool>()) == 2, TimeSpan.FromSeconds(15), "two routable engines");
            using var cache = new HttpClient { BaseAddress = cacheServer.BaseUrl };
            while (JsonNode.Parse(await cache.GetStringAsync("v1/kv/engines"))!.AsArray().Count < 2)
            {
                await Task.Delay(50);
            }

            var document = string.Join(' ', Enumerable.Range(0, 300).Select(i => $"paragraph{i % 23} about caches"));
            var messages = new List<object> { new { role = "system", content = "You answer questions about the document." }, new { role = "user", content = document + " Question one?" } };
            async Task AskAsync()
            {
                var (status, body) = await OpenAiHttp.PostJsonAsync(router.Http, "v1/chat/completions", new { model = Model, messages, max_tokens = 8, ignore_eos = true });
                Assert.Equal(200, status);
                messages.Add(new { role = "assistant", content = body!["choices"]![0]!["message"]!["content"]!.GetValue<string>() });
                messages.Add(new { role = "user", content = $"Follow-up question {messages.Count}?" });
            }

            var holder = await ServedByAsync(AskAsync, engines);
            // Give the engine's block events (sent every 100 ms) time to reach the cache server.
            await Task.Delay(300);
            for (var round = 2; round <= 5; round++)
            {
                Assert.Equal(holder, await ServedByAsync(AskAsync, engines));
                await Task.Delay(150);
            }
            Assert.Equal(0, (await router.MetricsAsync()).Sum("vllmstack:router_kv_lookup_fallbacks_total"));

            // Overload the holder directly (not through the router): its queue grows, and the guard moves the conversation.
            var busy = engines.Single(e => e.BaseUrl.ToString() == holder);
            using var load = new CancellationTokenSource();
            var hogs = Enumerable.Range(0, 30).Select(i => OpenAiHttp.PostJsonAsync(busy.Http, "v1/completions",
                new { model = Model, prompt = $"background load {i}", max_tokens = 3000, ignore_eos = true }, load.Token)).ToList();
            await busy.WaitForMetricsAsync(m => m.Sum("vllm:num_requests_running") >= 25, TimeSpan.FromSeconds(10), "the holder busy");
            await router.WaitForEnginesAsync(e => e.Any(x => x!["engine_stats"]!["num_requests_running"]!.GetValue<double>() >= 25), TimeSpan.FromSeconds(10), "the router seeing the load");
            Assert.NotEqual(holder, await ServedByAsync(AskAsync, engines));
            await load.CancelAsync();
            await Task.WhenAll(hogs.Select(async h =>
            {
                try
                {
                    await h;
                }
                catch (OperationCanceledException)
                {
                }
            }));

            // Without the cache server, requests still succeed (by load) and quickly.
            cacheServer.Kill();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await AskAsync();
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
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

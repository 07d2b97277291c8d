using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.EngineSim.Integration;

/// <summary>
/// vLLM 0.11's sleep mode (api_server.py under VLLM_SERVER_DEV_MODE, the executor's sleeping tags): each test starts
/// its own engine, since sleeping or killing one is not something other tests should share.
/// </summary>
public sealed class SleepModeTests
{
    private const string Model = EngineSimProcess.DefaultModel;
    private static readonly Dictionary<string, string> DevMode = new() { ["VLLM_SERVER_DEV_MODE"] = "1" };

    private static async Task<bool> IsSleepingAsync(EngineSimProcess sim) =>
        JsonNode.Parse(await sim.Http.GetStringAsync("is_sleeping"))!["is_sleeping"]!.GetValue<bool>();

    private static async Task PostOkAsync(EngineSimProcess sim, string path)
    {
        using var response = await sim.Http.PostAsync(path, null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Without_dev_mode_the_routes_are_not_registered()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant", "--enable-sleep-mode"]);
        foreach (var path in new[] { "sleep?level=1", "wake_up", "reset_prefix_cache" })
        {
            using var response = await sim.Http.PostAsync(path, null);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }
        using var isSleeping = await sim.Http.GetAsync("is_sleeping");
        Assert.Equal(HttpStatusCode.NotFound, isSleeping.StatusCode);
    }

    [Fact]
    public async Task The_engine_sleeps_until_every_tag_is_awake_and_without_sleep_mode_it_keeps_generating()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "fast"], DevMode);
        await PostOkAsync(sim, "sleep?level=1");
        Assert.True(await IsSleepingAsync(sim));

        // Without --enable-sleep-mode nothing was freed, so vLLM 0.11 serves as before.
        var (status, _) = await OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions", new { model = Model, prompt = "still here", max_tokens = 2 })
            .WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(200, status);

        await PostOkAsync(sim, "wake_up?tags=weights");
        Assert.True(await IsSleepingAsync(sim));
        await PostOkAsync(sim, "wake_up?tags=weights"); // not asleep any more: a warning, nothing else
        Assert.True(await IsSleepingAsync(sim));
        await PostOkAsync(sim, "wake_up?tags=kv_cache");
        Assert.False(await IsSleepingAsync(sim));

        await PostOkAsync(sim, "sleep?level=2");
        await PostOkAsync(sim, "wake_up");
        Assert.False(await IsSleepingAsync(sim));
    }

    [Fact]
    public async Task With_sleep_mode_a_request_to_a_sleeping_engine_kills_its_engine_core()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "fast", "--enable-sleep-mode"],
            new Dictionary<string, string>(DevMode) { ["VLLM_KEEP_ALIVE_ON_ENGINE_DEATH"] = "1" });
        await PostOkAsync(sim, "sleep?level=1");
        var (status, body) = await OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions", new { model = Model, prompt = "wake me", max_tokens = 2 })
            .WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(500, status);
        Assert.Equal("EngineCore encountered an issue. See stack trace (above) for the root cause.", body!["error"]!["message"]!.GetValue<string>());
        using var health = await sim.Http.GetAsync("health");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
    }

    [Fact]
    public async Task Reset_prefix_cache_answers_200_even_while_requests_run()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "fast", "--inter-token-latency-ms", "20"], DevMode);
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions")
        {
            Content = JsonContent.Create(new { model = Model, prompt = "a long answer", max_tokens = 1000, ignore_eos = true, stream = true }),
        };
        using var streaming = await sim.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await sim.WaitForMetricsAsync(m => VllmStack.ServiceDefaults.Metrics.PrometheusSampleExtensions.Sum(m, "vllm:num_requests_running") == 1,
            TimeSpan.FromSeconds(10), "the request running");
        await PostOkAsync(sim, "reset_prefix_cache");
    }
}

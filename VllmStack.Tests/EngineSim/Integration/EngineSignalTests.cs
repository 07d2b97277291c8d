using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.EngineSim.Integration;

/// <summary>
/// The signals a router reads from vLLM 0.11 besides the API: /health and /ping, /load, ORCA load headers, a dead
/// engine core, the model-loading phase and idle keep-alive connections. Each test starts its own engine.
/// </summary>
public sealed partial class EngineSignalTests
{
    private const string Model = EngineSimProcess.DefaultModel;
    private const string EngineDead = "EngineCore encountered an issue. See stack trace (above) for the root cause.";

    private static HttpRequestMessage Completion(bool stream, int maxTokens = 2) => new(HttpMethod.Post, "v1/completions")
    {
        Content = JsonContent.Create(new { model = Model, prompt = "signal words", max_tokens = maxTokens, ignore_eos = true, stream }),
    };

    [Fact]
    public async Task Ping_answers_as_health_on_get_and_post()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        foreach (var method in new[] { HttpMethod.Get, HttpMethod.Post })
        {
            using var response = await sim.Http.SendAsync(new HttpRequestMessage(method, "ping"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Empty(await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task Load_counts_the_requests_in_flight_only_with_server_load_tracking()
    {
        string[] slow = ["--latency-preset", "fast", "--inter-token-latency-ms", "20"];
        await using var tracked = await EngineSimProcess.StartAsync([.. slow, "--enable-server-load-tracking"]);
        await using var untracked = await EngineSimProcess.StartAsync(slow);
        foreach (var (sim, expected) in new[] { (tracked, 2), (untracked, 0) })
        {
            using var a = await sim.Http.SendAsync(Completion(stream: true, maxTokens: 2000), HttpCompletionOption.ResponseHeadersRead);
            using var b = await sim.Http.SendAsync(Completion(stream: true, maxTokens: 2000), HttpCompletionOption.ResponseHeadersRead);
            await sim.WaitForMetricsAsync(m => m.Sum("vllm:num_requests_running") == 2, TimeSpan.FromSeconds(10), "both running");
            Assert.Equal(expected, JsonNode.Parse(await sim.Http.GetStringAsync("load"))!["server_load"]!.GetValue<long>());
        }
        // The two streams were dropped above; their handlers end when the engine notices.
        var idle = Stopwatch.StartNew();
        var load = -1L;
        while (load != 0 && idle.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(20);
            load = JsonNode.Parse(await tracked.Http.GetStringAsync("load"))!["server_load"]!.GetValue<long>();
        }
        Assert.Equal(0, load);
    }

    [Fact]
    public async Task Orca_load_reports_ride_on_successful_non_streaming_responses()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        foreach (var format in new[] { "TEXT", "JSON", "xml", null })
        {
            using var request = Completion(stream: false);
            if (format is not null)
            {
                request.Headers.Add("endpoint-load-metrics-format", format);
            }
            using var response = await sim.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var header = response.Headers.TryGetValues("endpoint-load-metrics", out var values) ? values.Single() : null;
            switch (format)
            {
                case "TEXT":
                    Assert.Matches(TextReport(), header!);
                    break;
                case "JSON":
                    Assert.StartsWith("JSON {\"named_metrics\": {\"num_requests_waiting\": ", header!);
                    var metrics = JsonNode.Parse(header!["JSON ".Length..])!["named_metrics"]!.AsObject();
                    Assert.Equal(["num_requests_waiting", "kv_cache_usage_perc"], metrics.Select(m => m.Key));
                    break;
                default:
                    Assert.Null(header);
                    break;
            }
        }
        using var streamed = Completion(stream: true);
        streamed.Headers.Add("endpoint-load-metrics-format", "TEXT");
        using var stream = await sim.Http.SendAsync(streamed);
        Assert.False(stream.Headers.Contains("endpoint-load-metrics"));
    }

    [Fact]
    public async Task A_dead_engine_core_fails_what_is_in_flight_and_what_comes_and_health_turns_503()
    {
        await using var sim = await EngineSimProcess.StartAsync(
            ["--latency-preset", "fast", "--inter-token-latency-ms", "20", "--fault-engine-dead-after-requests", "1"],
            new Dictionary<string, string> { ["VLLM_KEEP_ALIVE_ON_ENGINE_DEATH"] = "1" });
        using var inFlight = await sim.Http.SendAsync(Completion(stream: true, maxTokens: 2000), HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await inFlight.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: {", await reader.ReadLineAsync());

        // The second request reaches a dying engine: vLLM's route turns EngineDeadError into an HTTPException(500).
        using var killer = await sim.Http.SendAsync(Completion(stream: false));
        Assert.Equal(HttpStatusCode.InternalServerError, killer.StatusCode);
        var error = JsonNode.Parse(await killer.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal((EngineDead, "Internal Server Error"), (error["message"]!.GetValue<string>(), error["type"]!.GetValue<string>()));

        // The stream already had its 200: an error frame (vLLM's create_streaming_error_response), then [DONE].
        var rest = await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(20));
        var frames = rest.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(f => f.Trim()).ToList();
        Assert.Equal("data: [DONE]", frames[^1]);
        var frame = JsonNode.Parse(frames[^2]["data: ".Length..])!["error"]!;
        Assert.Equal((EngineDead, "BadRequestError", 400), (frame["message"]!.GetValue<string>(), frame["type"]!.GetValue<string>(), frame["code"]!.GetValue<int>()));

        foreach (var path in new[] { "health", "ping" })
        {
            using var probe = await sim.Http.GetAsync(path);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, probe.StatusCode);
        }
        using var later = await sim.Http.SendAsync(Completion(stream: true));
        Assert.Equal(HttpStatusCode.InternalServerError, later.StatusCode);
        Assert.Equal("application/json", later.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Without_keep_alive_a_dead_engine_shuts_its_server_down()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        using (var healthy = await sim.Http.SendAsync(Completion(stream: false)))
        {
            Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
        }
        using var killer = Completion(stream: false);
        killer.Headers.Add("x-vllmsim-engine-dead", "1");
        using (var response = await sim.Http.SendAsync(killer))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        }
        var clock = Stopwatch.StartNew();
        while (!sim.HasExited && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(100);
        }
        Assert.True(sim.HasExited, "the server still runs with a dead engine core\n" + sim.Output);
        Assert.Contains("Engine core died", sim.Output);
    }

    [Fact]
    public async Task Nothing_listens_while_the_model_loads()
    {
        var port = VllmStack.Tests.Infrastructure.AspireApps.FreeLoopbackPorts(1)[0];
        var starting = EngineSimProcess.StartAsync(["--latency-preset", "instant", "--startup-delay-seconds", "3"], port: port);
        // Bounded: the engine says when it listens; until then every connection attempt is refused.
        var refused = 0;
        while (!starting.IsCompleted && refused < 200)
        {
            using var client = new TcpClient();
            try
            {
                await client.ConnectAsync(IPAddress.Loopback, port);
                break;
            }
            catch (SocketException)
            {
                refused++;
                await Task.Delay(20);
            }
        }
        await using var sim = await starting;
        Assert.True(refused > 0, "the port accepted connections before the engine said it listens");
        Assert.False(starting.IsFaulted);
        using var health = await sim.Http.GetAsync("health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task Idle_keep_alive_connections_close_after_uvicorns_five_seconds()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        using var client = new TcpClient();
        await client.ConnectAsync(sim.BaseUrl.Host, sim.BaseUrl.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET /health HTTP/1.1\r\nHost: {sim.BaseUrl.Authority}\r\n\r\n"));
        var buffer = new byte[4096];
        var read = await stream.ReadAsync(buffer);
        Assert.StartsWith("HTTP/1.1 200", Encoding.ASCII.GetString(buffer, 0, read));

        // Kestrel's own default keeps an idle connection 130 s; vLLM's uvicorn closes it after 5 s.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var closed = await stream.ReadAsync(buffer, timeout.Token);
        Assert.Equal(0, closed);
    }

    [GeneratedRegex(@"^TEXT named_metrics\.num_requests_waiting=\d+\.\d+, named_metrics\.kv_cache_usage_perc=\d+\.\d+(e-\d+)?$")]
    private static partial Regex TextReport();
}

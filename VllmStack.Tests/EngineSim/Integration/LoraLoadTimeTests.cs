using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.EngineSim.Integration;

/// <summary>
/// Adapter loads take simulated time, and vLLM's engine core runs no step while one loads (<c>add_lora</c> is a utility
/// call handled on the engine-core thread between steps): running streams pause, queued requests wait. Unloading only
/// drops the name (vLLM 0.11's <c>unload_lora_adapter</c>): requests already in the engine finish.
/// Bounds are loose on purpose: the machine is shared, so only "at least" claims are made about time.
/// </summary>
public sealed class LoraLoadTimeTests
{
    private static readonly Dictionary<string, string> RuntimeLora = new() { ["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "true" };

    internal static object Completion(string model, int maxTokens, bool stream) =>
        stream
            ? new { model, prompt = "tell me about adapters", max_tokens = maxTokens, ignore_eos = true, stream, stream_options = new { include_usage = true } }
            : new { model, prompt = "tell me about adapters", max_tokens = maxTokens, ignore_eos = true, stream };

    /// <summary>The stream's finish reason and its usage's completion tokens.</summary>
    internal static (string? FinishReason, int CompletionTokens) Ending(OpenAiHttp.StreamResult result) =>
        (result.Chunks.Last(c => c["choices"]!.AsArray().Count > 0)["choices"]![0]!["finish_reason"]?.GetValue<string>(),
         result.Chunks[^1]["usage"]!["completion_tokens"]!.GetValue<int>());

    [Fact]
    public async Task A_load_takes_the_configured_time_and_stalls_a_running_stream_meanwhile()
    {
        using var adapters = new LoraAdapterFiles();
        await using var sim = await EngineSimProcess.StartAsync(
            ["--latency-preset", "fast", "--inter-token-latency-ms", "20", "--enable-lora", "--max-loras", "2", "--lora-load-seconds", "2"], RuntimeLora);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));

        // ~300 tokens at 20 ms: the stream runs for several seconds around the load.
        var stream = TimedStreamAsync(sim.Http, Completion(EngineSimProcess.DefaultModel, 300, stream: true), cts.Token);
        await sim.WaitForMetricsAsync(m => m.Sum("vllm:generation_tokens_total") >= 10, TimeSpan.FromSeconds(30), "the stream producing tokens");

        var clock = Stopwatch.StartNew();
        var (status, _) = await LoraHttp.PostAsync(sim.Http, "v1/load_lora_adapter", new { lora_name = "late", lora_path = adapters.Create("late") });
        var loadTime = clock.Elapsed;
        Assert.Equal(200, status);
        Assert.True(loadTime >= TimeSpan.FromSeconds(1.9), $"the load took {loadTime}");

        var arrivals = await stream;
        Assert.True(arrivals.Count > 100, $"{arrivals.Count} chunks");
        var longestGap = arrivals.Zip(arrivals.Skip(1), (a, b) => b - a).Max();
        Assert.True(longestGap >= TimeSpan.FromSeconds(1.5), $"the longest pause between tokens was {longestGap}");
    }

    [Fact]
    public async Task Requests_for_an_adapter_are_404_until_its_load_ends_and_then_served()
    {
        using var adapters = new LoraAdapterFiles();
        await using var sim = await EngineSimProcess.StartAsync(
            ["--latency-preset", "instant", "--enable-lora", "--lora-load-seconds", "4"], RuntimeLora);
        var load = LoraHttp.PostAsync(sim.Http, "v1/load_lora_adapter", new { lora_name = "fresh", lora_path = adapters.Create("fresh") });
        var (early, _) = await OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions", Completion("fresh", 4, stream: false));
        Assert.False(load.IsCompleted, "the load ended before a request right after it began");
        Assert.Equal(404, early);

        Assert.Equal(200, (await load).Status);
        var (status, body) = await OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions", Completion("fresh", 4, stream: false));
        Assert.Equal(200, status);
        Assert.Equal("fresh", body!["model"]!.GetValue<string>());
        Assert.Equal(4, body["usage"]!["completion_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task Lora_modules_given_at_start_each_take_the_load_time_before_the_server_listens()
    {
        using var adapters = new LoraAdapterFiles();
        var clock = Stopwatch.StartNew();
        await using var sim = await EngineSimProcess.StartAsync(
            ["--latency-preset", "instant", "--enable-lora", "--lora-load-seconds", "1.5",
             "--lora-modules", $"a={adapters.Create("a")}", $"b={adapters.Create("b")}", $"c={adapters.Create("c")}"]);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(4.4), $"the engine listened after {clock.Elapsed}");
        var (status, _) = await OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions", Completion("c", 2, stream: false));
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task Unloading_an_adapter_lets_its_running_and_queued_requests_finish_and_refuses_new_ones()
    {
        using var adapters = new LoraAdapterFiles();
        await using var sim = await EngineSimProcess.StartAsync(
            ["--latency-preset", "fast", "--inter-token-latency-ms", "20", "--max-num-seqs", "1", "--enable-lora", "--lora-load-seconds", "0.2"], RuntimeLora);
        Assert.Equal(200, (await LoraHttp.PostAsync(sim.Http, "v1/load_lora_adapter", new { lora_name = "going", lora_path = adapters.Create("going") })).Status);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));

        var running = OpenAiHttp.StreamAsync(sim.Http, "v1/completions", Completion("going", 150, stream: true), cts.Token);
        await sim.WaitForMetricsAsync(m => m.Sum("vllm:num_requests_running") == 1, TimeSpan.FromSeconds(30), "the first request running");
        var queued = OpenAiHttp.StreamAsync(sim.Http, "v1/completions", Completion("going", 30, stream: true), cts.Token);
        await sim.WaitForMetricsAsync(m => m.Sum("vllm:num_requests_waiting") == 1, TimeSpan.FromSeconds(30), "the second request queued");

        Assert.Equal(200, (await LoraHttp.PostAsync(sim.Http, "v1/unload_lora_adapter", new { lora_name = "going" })).Status);
        var (refused, _) = await OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions", Completion("going", 2, stream: false));
        Assert.Equal(404, refused);

        foreach (var (result, tokens) in new[] { (await running, 150), (await queued, 30) })
        {
            Assert.Equal(("length", tokens), Ending(result));
        }
        var models = JsonNode.Parse(await sim.Http.GetStringAsync("v1/models"))!["data"]!.AsArray();
        Assert.DoesNotContain(models, m => m!["id"]!.GetValue<string>() == "going");
    }

    /// <summary>Streams a request and returns when each SSE data event arrived (the final <c>[DONE]</c> excluded).</summary>
    private static async Task<List<TimeSpan>> TimedStreamAsync(HttpClient http, object body, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = JsonContent.Create(body) };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        var arrivals = new List<TimeSpan>();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal) && line != "data: [DONE]")
            {
                arrivals.Add(clock.Elapsed);
            }
        }
        return arrivals;
    }
}

/// <summary><c>vllm:lora_requests_info</c> with more adapters than <c>--max-loras</c> (its own class: it runs beside the others).</summary>
public sealed class LoraBatchMetricsTests
{
    [Fact]
    public async Task Lora_requests_info_lists_the_batchs_adapters_as_running_and_the_rest_as_waiting_in_arrival_order()
    {
        using var adapters = new LoraAdapterFiles();
        string[] names = ["ad-0", "ad-1", "ad-2", "ad-3", "ad-4", "ad-5"];
        await using var sim = await EngineSimProcess.StartAsync(
        [
            "--latency-preset", "fast", "--inter-token-latency-ms", "20", "--enable-lora", "--max-loras", "2", "--lora-load-seconds", "0",
            "--lora-modules", .. names.Select(n => $"{n}={adapters.Create(n)}"),
        ]);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var streams = new List<Task<OpenAiHttp.StreamResult>>();
        foreach (var (name, i) in names.Select((n, i) => (n, i)))
        {
            streams.Add(OpenAiHttp.StreamAsync(sim.Http, "v1/completions", LoraLoadTimeTests.Completion(name, 300, stream: true), cts.Token));
            // Each request reaches the engine before the next, so that the arrival order is known.
            await sim.WaitForMetricsAsync(m => m.Sum("vllm:num_requests_running") + m.Sum("vllm:num_requests_waiting") == i + 1,
                TimeSpan.FromSeconds(30), $"{i + 1} requests in the engine");
        }

        // Two adapters fill the batch (max-loras 2); the other four wait, each listed once, in the order they came.
        await sim.WaitForMetricsAsync(m => Latest(m) is { } s && s.Has("running_lora_adapters", "ad-0,ad-1") && s.Has("waiting_lora_adapters", "ad-2,ad-3,ad-4,ad-5"),
            TimeSpan.FromSeconds(30), "ad-0,ad-1 running and ad-2..ad-5 waiting");
        // As the first two finish, the next two take their slots.
        await sim.WaitForMetricsAsync(m => Latest(m) is { } s && s.Has("running_lora_adapters", "ad-2,ad-3") && s.Has("waiting_lora_adapters", "ad-4,ad-5"),
            TimeSpan.FromSeconds(60), "ad-2,ad-3 running and ad-4,ad-5 waiting");
        foreach (var result in await Task.WhenAll(streams))
        {
            Assert.Equal(("length", 300), LoraLoadTimeTests.Ending(result));
        }
        await sim.WaitForMetricsAsync(m => Latest(m) is { } s && s.Has("running_lora_adapters", "") && s.Has("waiting_lora_adapters", ""),
            TimeSpan.FromSeconds(30), "empty lists once idle");

        static PrometheusSample? Latest(IReadOnlyList<PrometheusSample> m) =>
            m.Where(s => s.Name == "vllm:lora_requests_info").MaxBy(s => s.Value);
    }
}

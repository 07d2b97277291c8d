using System.Net;
using System.Net.Http.Headers;
using System.Text;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.EngineSim.Integration;

/// <summary>
/// EngineSim's <c>/metrics</c> against vLLM 0.11's: the per-step and per-request histograms, the deprecated
/// time-per-output-token histogram, Python's number format, <c>cache_config_info</c>'s labels, LoRA's info gauge and
/// the FastAPI instrumentator's HTTP metrics. Each test runs its own simulator.
/// </summary>
public sealed class MetricsFidelityTests
{
    private static object Completion(string prompt, int maxTokens, int n = 1, bool stream = false, string model = EngineSimProcess.DefaultModel) =>
        new { model, prompt, max_tokens = maxTokens, n, ignore_eos = true, stream };

    [Fact]
    public async Task Steps_and_requests_feed_vllms_per_step_and_per_request_histograms()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "fast", "--inter-token-latency-ms", "10"]);
        var (status, body) = await OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions", Completion("Three samples of one prompt, decoded together", 30, n: 3));
        Assert.Equal(200, status);
        (status, _) = await OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions", Completion("One more", 5));
        Assert.Equal(200, status);

        var m = await sim.MetricsAsync();
        // One observation per request, when its last sample ends: n and its longest output.
        Assert.Equal((2, 4), (m.Sum("vllm:request_params_n_count"), m.Sum("vllm:request_params_n_sum")));
        Assert.Equal((2, 35), (m.Sum("vllm:request_max_num_generation_tokens_count"), m.Sum("vllm:request_max_num_generation_tokens_sum")));
        // One per sequence: its max_tokens.
        Assert.Equal((4, 95), (m.Sum("vllm:request_params_max_tokens_count"), m.Sum("vllm:request_params_max_tokens_sum")));
        // The deprecated name carries exactly the inter-token latencies.
        Assert.Equal(91, m.Sum("vllm:time_per_output_token_seconds_count"));
        Assert.Equal(m.Sum("vllm:inter_token_latency_seconds_count"), m.Sum("vllm:time_per_output_token_seconds_count"));
        Assert.Equal(m.Sum("vllm:inter_token_latency_seconds_sum"), m.Sum("vllm:time_per_output_token_seconds_sum"));
        // Each step counts its prompts and generated tokens, so the steps add up to both counters; three samples
        // decoding side by side share steps, so there are fewer steps than generated tokens.
        var generated = m.Sum("vllm:generation_tokens_total");
        Assert.Equal(95, generated);
        Assert.Equal(m.Sum("vllm:prompt_tokens_total") + generated, m.Sum("vllm:iteration_tokens_total_sum"));
        Assert.InRange(m.Sum("vllm:iteration_tokens_total_count"), 35, generated - 1);
        Assert.Contains(m, s => s.Name == "vllm:iteration_tokens_total_bucket" && s.Has("le", "16384.0") && s.Has("model_name", EngineSimProcess.DefaultModel));
        Assert.Contains(m, s => s.Name == "vllm:request_params_n_bucket" && s.Has("le", "20.0"));
    }

    [Fact]
    public async Task Numbers_are_written_as_pythons_prometheus_client_writes_them()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        await OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions", Completion("format me", 2));
        var text = await sim.MetricsTextAsync();
        var labels = $"engine=\"0\",model_name=\"{EngineSimProcess.DefaultModel}\"";

        Assert.Contains($"vllm:time_to_first_token_seconds_bucket{{{labels},le=\"0.005\"}} ", text);
        Assert.Contains($"vllm:time_to_first_token_seconds_bucket{{{labels},le=\"1.0\"}} 1.0\n", text);
        Assert.Contains($"vllm:time_to_first_token_seconds_bucket{{{labels},le=\"+Inf\"}} 1.0\n", text);
        Assert.Contains($"vllm:e2e_request_latency_seconds_bucket{{{labels},le=\"7680.0\"}} 1.0\n", text);
        Assert.Contains($"vllm:request_success_total{{engine=\"0\",finished_reason=\"length\",model_name=\"{EngineSimProcess.DefaultModel}\"}} 1.0\n", text);
        Assert.Contains($"vllm:num_requests_running{{{labels}}} 0.0\n", text);
        Assert.DoesNotContain("le=\"1\"", text);
    }

    [Fact]
    public async Task Cache_config_info_has_every_CacheConfig_label_of_vllm_0_11_with_the_flags_values()
    {
        await using var sim = await EngineSimProcess.StartAsync(
        [
            "--latency-preset", "instant", "--gpu-memory-utilization", "0.65", "--block-size", "32", "--num-gpu-blocks-override", "2048",
            "--no-enable-prefix-caching", "--kv-cache-dtype", "fp8", "--swap-space", "4",
        ]);
        var info = Assert.Single(await sim.MetricsAsync(), s => s.Name == "vllm:cache_config_info");
        Assert.Equal(1, info.Value);
        Assert.Equal(new Dictionary<string, string>
        {
            ["block_size"] = "32",
            ["cache_dtype"] = "fp8",
            ["calculate_kv_scales"] = "False",
            ["cpu_kvcache_space_bytes"] = "None",
            ["cpu_offload_gb"] = "0.0",
            ["enable_prefix_caching"] = "False",
            ["engine"] = "0",
            ["gpu_memory_utilization"] = "0.65",
            ["is_attention_free"] = "False",
            ["kv_cache_memory_bytes"] = "None",
            ["kv_sharing_fast_prefill"] = "False",
            ["mamba_cache_dtype"] = "auto",
            ["mamba_page_size_padded"] = "None",
            ["mamba_ssm_cache_dtype"] = "auto",
            ["num_cpu_blocks"] = "None",
            ["num_gpu_blocks"] = "2048",
            ["num_gpu_blocks_override"] = "2048",
            ["prefix_caching_hash_algo"] = "sha256",
            ["sliding_window"] = "None",
            ["swap_space"] = "4.0",
            ["swap_space_bytes"] = "4294967296.0",
        }, info.Labels.ToDictionary());
    }

    [Fact]
    public async Task Cache_config_info_without_flags_reports_vllm_serves_defaults()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        var info = Assert.Single(await sim.MetricsAsync(), s => s.Name == "vllm:cache_config_info");
        Assert.Equal(("0.9", "None", "8192", "True", "0.0"),
            (info.Labels["gpu_memory_utilization"], info.Labels["num_gpu_blocks_override"], info.Labels["num_gpu_blocks"],
             info.Labels["enable_prefix_caching"], info.Labels["swap_space"]));
        Assert.Equal(21, info.Labels.Count);
    }

    [Fact]
    public async Task Lora_requests_info_exists_only_with_lora()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        await OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions", Completion("no adapters here", 2));
        Assert.DoesNotContain("vllm:lora_requests_info", await sim.MetricsTextAsync());
    }

    [Fact]
    public async Task Lora_requests_info_keeps_a_series_per_state_and_lists_an_adapter_waiting_while_it_runs()
    {
        using var adapters = new LoraAdapterFiles();
        await using var sim = await EngineSimProcess.StartAsync(
        [
            "--latency-preset", "fast", "--inter-token-latency-ms", "20", "--max-num-seqs", "1", "--enable-lora", "--max-loras", "2",
            "--lora-modules", $"sql={adapters.Create("sql")}", $"chat={adapters.Create("chat")}",
        ]);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var first = OpenAiHttp.StreamAsync(sim.Http, "v1/completions", Completion("first sql request", 40, stream: true, model: "sql"), cts.Token);
        await sim.WaitForMetricsAsync(m => m.Sum("vllm:num_requests_running") == 1, TimeSpan.FromSeconds(20), "the first request running");
        var second = OpenAiHttp.StreamAsync(sim.Http, "v1/completions", Completion("second sql request", 4, stream: true, model: "sql"), cts.Token);
        await sim.WaitForMetricsAsync(m => m.Sum("vllm:num_requests_waiting") == 1, TimeSpan.FromSeconds(20), "the second request waiting");
        var third = OpenAiHttp.StreamAsync(sim.Http, "v1/completions", Completion("a chat request", 4, stream: true, model: "chat"), cts.Token);

        // sql runs and waits at once; chat, seen after sql, waits after it.
        var busy = await sim.WaitForMetricsAsync(m => m.Any(s => IsLoraInfo(s, running: "sql", waiting: "sql,chat")), TimeSpan.FromSeconds(20),
            "sql running and sql,chat waiting");
        Assert.True(busy.Single(s => IsLoraInfo(s, "sql", "sql,chat")).Labels["max_lora"] == "2");
        await Task.WhenAll(first, second, third);

        var done = await sim.WaitForMetricsAsync(m => Latest(m) is { } s && IsLoraInfo(s, running: "", waiting: ""), TimeSpan.FromSeconds(20),
            "an idle engine's empty lists as the latest series");
        // Earlier combinations stay behind, each with the Unix time of its last step.
        Assert.Contains(done, s => IsLoraInfo(s, "sql", "sql,chat"));
        Assert.Contains(done, s => IsLoraInfo(s, "chat", ""));
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.All(done.Where(s => s.Name == "vllm:lora_requests_info"), s => Assert.InRange(s.Value, now - 120, now + 5));

        static PrometheusSample? Latest(IReadOnlyList<PrometheusSample> m) =>
            m.Where(s => s.Name == "vllm:lora_requests_info").MaxBy(s => s.Value);
    }

    private static bool IsLoraInfo(PrometheusSample s, string running, string waiting) =>
        s.Name == "vllm:lora_requests_info" && s.Has("running_lora_adapters", running) && s.Has("waiting_lora_adapters", waiting);

    [Fact]
    public async Task Http_metrics_are_the_fastapi_instrumentators_with_vllms_excluded_handlers()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant", "--api-key", "k"]);
        sim.Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "k");
        var okBody = """{"prompt":"count me","max_tokens":3}""";
        var badBody = """{"prompt":"count me","max_tokens":"three"}""";
        var streamBody = """{"prompt":"stream me","max_tokens":3,"stream":true}""";
        var responseBytes = 0L;
        foreach (var body in new[] { okBody, badBody, streamBody })
        {
            using var response = await sim.Http.PostAsync("v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
            var bytes = (await response.Content.ReadAsByteArrayAsync()).Length;
            responseBytes += body == streamBody ? 0 : bytes;
        }
        (await sim.Http.GetAsync("v1/models")).Dispose();
        (await sim.Http.GetAsync("no/such/path")).Dispose();
        (await sim.Http.GetAsync("health")).Dispose();
        (await sim.Http.GetAsync("version")).Dispose();
        (await sim.Http.PostAsync("v1/load_lora_adapter", new StringContent("{}", Encoding.UTF8, "application/json"))).Dispose();
        using (var unauthorized = new HttpRequestMessage(HttpMethod.Get, "v1/models"))
        {
            unauthorized.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "wrong");
            using var refused = await sim.Http.SendAsync(unauthorized);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        var m = await sim.MetricsAsync();
        double Requests(string handler, string method, string status) =>
            m.Sum("http_requests_total", ("handler", handler), ("method", method), ("status", status));
        Assert.Equal(2, Requests("/v1/completions", "POST", "2xx"));
        Assert.Equal(1, Requests("/v1/completions", "POST", "4xx"));
        Assert.Equal(1, Requests("/v1/models", "GET", "2xx"));
        Assert.Equal(1, Requests("none", "GET", "4xx"));
        // /health, /version, /metrics and (through "/load") /v1/load_lora_adapter are excluded; the 401 never reached them.
        Assert.Equal(5, m.Sum("http_requests_total"));
        Assert.DoesNotContain(m, s => s.Labels.TryGetValue("handler", out var h) && (h.Contains("/health") || h.Contains("/version") || h.Contains("/load") || h.Contains("/metrics")));
        Assert.Equal(5, m.Sum("http_request_duration_highr_seconds_count"));
        Assert.Equal(3, m.Sum("http_request_duration_seconds_count", ("handler", "/v1/completions"), ("method", "POST")));
        Assert.Contains(m, s => s.Name == "http_request_duration_seconds_bucket" && s.Has("le", "0.5"));
        Assert.Contains(m, s => s.Name == "http_request_duration_highr_seconds_bucket" && s.Has("le", "60.0") && !s.Labels.ContainsKey("handler"));
        var requestBytes = new[] { okBody, badBody, streamBody }.Sum(b => Encoding.UTF8.GetByteCount(b));
        Assert.Equal((3, requestBytes), (m.Sum("http_request_size_bytes_count", ("handler", "/v1/completions")), m.Sum("http_request_size_bytes_sum", ("handler", "/v1/completions"))));
        // Content-Length of what was answered; a streamed answer has none and counts 0.
        Assert.Equal(responseBytes, m.Sum("http_response_size_bytes_sum", ("handler", "/v1/completions")));
    }
}

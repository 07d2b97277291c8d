using System.ClientModel;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OpenAI;
using OpenAI.Chat;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Router;

/// <summary>Two echo-mode engines behind a round-robin router, shared by the API-level tests.</summary>
public sealed class TwoEngineRouterFixture : IAsyncLifetime
{
    public EngineSimProcess EngineA { get; private set; } = null!;
    public EngineSimProcess EngineB { get; private set; } = null!;
    public RouterProcess Router { get; private set; } = null!;

    private readonly LoraAdapterFiles _adapters = new();

    public async Task InitializeAsync()
    {
        string[] engineArgs = ["--latency-preset", "fast", "--output-mode", "echo", "--enable-lora", "--lora-modules", $"sql-adapter={_adapters.Create("sql")}"];
        var engines = await Task.WhenAll(EngineSimProcess.StartAsync(engineArgs), EngineSimProcess.StartAsync(engineArgs));
        (EngineA, EngineB) = (engines[0], engines[1]);
        Router = await RouterProcess.StartAsync(["--static-backends", $"{EngineA.BaseUrl},{EngineB.BaseUrl}", "--routing-logic", "roundrobin"]);
        await Router.WaitForEnginesAsync(e => e.Count == 2 && e.All(x => x!["routable"]!.GetValue<bool>()), TimeSpan.FromSeconds(15), "two routable engines");
    }

    public async Task DisposeAsync()
    {
        await Router.DisposeAsync();
        await EngineA.DisposeAsync();
        await EngineB.DisposeAsync();
        _adapters.Dispose();
    }
}

public sealed class RouterApiTests(TwoEngineRouterFixture fixture) : IClassFixture<TwoEngineRouterFixture>
{
    private const string Model = EngineSimProcess.DefaultModel;

    private OpenAIClient Client() => new(new ApiKeyCredential("unused"), new OpenAIClientOptions
    {
        Endpoint = new Uri(fixture.Router.BaseUrl, "v1"),
        NetworkTimeout = TimeSpan.FromSeconds(30),
    });

    [Fact]
    public async Task Streaming_chat_through_the_router_with_the_openai_sdk()
    {
        var chat = Client().GetChatClient(Model);
        var text = "";
        ChatTokenUsage? usage = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Routed through the router")]))
        {
            text += string.Concat(update.ContentUpdate.Select(p => p.Text));
            usage ??= update.Usage;
        }
        Assert.Equal("Routed through the router", text);
        Assert.NotNull(usage);

        var completion = await chat.CompleteChatAsync([new UserChatMessage("And without streaming")]);
        Assert.Equal("And without streaming", completion.Value.Content[0].Text);
    }

    [Fact]
    public async Task Models_are_aggregated_once_across_engines_and_unknown_models_are_404()
    {
        var models = (await Client().GetOpenAIModelClient().GetModelsAsync()).Value;
        Assert.Equal(1, models.Count(m => m.Id == Model));
        Assert.Equal(1, models.Count(m => m.Id == "sql-adapter"));

        var error = await Assert.ThrowsAsync<ClientResultException>(() => Client().GetChatClient("no-such-model").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, error.Status);
        Assert.Contains("does not exist", error.Message);
    }

    [Fact]
    public async Task Round_robin_spreads_requests_and_the_adapter_is_routable()
    {
        var before = await RequestsPerEngineAsync();
        for (var i = 0; i < 6; i++)
        {
            var (status, _) = await OpenAiHttp.PostJsonAsync(fixture.Router.Http, "v1/completions", new { model = i % 2 == 0 ? Model : "sql-adapter", prompt = "spread me", max_tokens = 2 });
            Assert.Equal(200, status);
        }
        var after = await RequestsPerEngineAsync();
        Assert.All(after, pair => Assert.Equal(3, pair.Value - before.GetValueOrDefault(pair.Key)));
    }

    [Fact]
    public async Task Streams_are_relayed_event_for_event_and_request_ids_pass_through()
    {
        var body = new { model = Model, prompt = "one two three four five six seven", max_tokens = 20, stream = true };
        var direct = await StreamRawAsync(fixture.EngineA.Http, body, "fixed-id-1");
        var routed = await StreamRawAsync(fixture.Router.Http, body, "fixed-id-1");

        Assert.Equal("fixed-id-1", routed.RequestId);
        Assert.Equal("text/event-stream; charset=utf-8", routed.ContentType);
        static string Normalise(string s) => Regex.Replace(s, "\"created\":\\d+", "\"created\":0");
        Assert.Equal(Normalise(direct.Body), Normalise(routed.Body));
        Assert.Contains("\"id\":\"cmpl-fixed-id-1\"", routed.Body);
    }

    [Fact]
    public async Task Client_mistakes_are_answered_by_the_router_in_openai_style()
    {
        var (status, body) = await OpenAiHttp.PostRawAsync(fixture.Router.Http, "v1/chat/completions", "{not json");
        Assert.Equal(400, status);
        Assert.Equal("BadRequestError", body!["error"]!["type"]!.GetValue<string>());

        // The engine's own 400 (a wrongly typed field) comes back as the engine wrote it.
        var (engineStatus, engineBody) = await OpenAiHttp.PostJsonAsync(fixture.Router.Http, "v1/completions", new { model = Model, prompt = "x", max_tokens = "many" });
        Assert.Equal(400, engineStatus);
        Assert.Equal("Bad Request", engineBody!["error"]!["type"]!.GetValue<string>());
        Assert.Contains("max_tokens", engineBody["error"]!["message"]!.GetValue<string>());

        using var missing = await fixture.Router.Http.GetAsync("v2/unknown");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.NotNull(JsonNode.Parse(await missing.Content.ReadAsStringAsync())!["error"]);
    }

    [Fact]
    public async Task Engines_and_metrics_describe_each_engine()
    {
        await OpenAiHttp.PostJsonAsync(fixture.Router.Http, "v1/completions", new { model = Model, prompt = "count me", max_tokens = 2 });
        var engines = JsonNode.Parse(await fixture.Router.Http.GetStringAsync("engines"))!;
        Assert.Equal("roundrobin", engines["routing_logic"]!.GetValue<string>());
        var first = engines["engines"]![0]!;
        Assert.Equal("healthy", first["health"]!.GetValue<string>());
        Assert.Contains(first["models"]!.AsArray(), m => m!.GetValue<string>() == Model);
        Assert.NotNull(first["engine_stats"]!["scraped_at"]);

        var metrics = await fixture.Router.MetricsAsync();
        Assert.Equal(2, metrics.Sum("vllm:healthy_pods_total"));
        Assert.True(metrics.Sum("vllm:num_incoming_requests_total") >= 1);
        Assert.Contains(metrics, s => s.Name == "vllm:current_qps" && s.Labels.ContainsKey("server"));
        Assert.True(metrics.Sum("vllmstack:router_added_latency_seconds_count") >= 1);
        Assert.True(metrics.Sum("vllm:request_latency_seconds_count") >= 1);
        // The runtime's own metrics, but not its per-request HTTP meters (they cost throughput; OTLP carries them).
        Assert.Contains(metrics, s => s.Name.StartsWith("dotnet_", StringComparison.Ordinal));
        Assert.DoesNotContain(metrics, s => s.Name.StartsWith("http_", StringComparison.Ordinal) || s.Name.StartsWith("kestrel_", StringComparison.Ordinal)
            || s.Name.StartsWith("aspnetcore_", StringComparison.Ordinal));
    }

    private async Task<Dictionary<string, long>> RequestsPerEngineAsync()
    {
        var engines = JsonNode.Parse(await fixture.Router.Http.GetStringAsync("engines"))!["engines"]!.AsArray();
        return engines.ToDictionary(e => e!["name"]!.GetValue<string>(), e => e!["request_stats"]!["requests"]!.GetValue<long>());
    }

    private static async Task<(string Body, string? RequestId, string? ContentType)> StreamRawAsync(HttpClient http, object body, string requestId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = JsonContent.Create(body) };
        request.Headers.Add("x-request-id", requestId);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadAsStringAsync(),
            response.Headers.TryGetValues("x-request-id", out var ids) ? ids.First() : null,
            response.Content.Headers.ContentType?.ToString());
    }
}

/// <summary>Failures, discovery and security: each test starts its own engines and router.</summary>
public sealed class RouterResilienceTests
{
    private const string Model = EngineSimProcess.DefaultModel;

    private static object Completion(int maxTokens = 4, bool stream = false) =>
        new { model = Model, prompt = "resilience test prompt", max_tokens = maxTokens, ignore_eos = true, stream };

    [Fact]
    public async Task An_engine_killed_under_load_costs_no_request()
    {
        string[] args = ["--latency-preset", "fast", "--inter-token-latency-ms", "2"];
        var engines = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => EngineSimProcess.StartAsync(args)));
        try
        {
            await using var router = await RouterProcess.StartAsync(["--static-backends", string.Join(',', engines.Select(e => e.BaseUrl)), "--routing-logic", "roundrobin"]);
            await router.WaitForEnginesAsync(e => e.Count(x => x!["routable"]!.GetValue<bool>()) == 3, TimeSpan.FromSeconds(15), "three routable engines");

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var completed = 0;
            var statuses = new System.Collections.Concurrent.ConcurrentBag<int>();
            var workers = Enumerable.Range(0, 6).Select(async _ =>
            {
                for (var i = 0; i < 40; i++)
                {
                    var (status, _) = await OpenAiHttp.PostJsonAsync(router.Http, "v1/completions", Completion(20), cts.Token);
                    statuses.Add(status);
                    Interlocked.Increment(ref completed);
                }
            }).ToArray();
            while (Volatile.Read(ref completed) < 40)
            {
                await Task.Delay(10, cts.Token);
            }
            engines[1].Kill();
            await Task.WhenAll(workers);

            Assert.Equal(240, statuses.Count);
            Assert.All(statuses, s => Assert.Equal(200, s));
            var view = await router.WaitForEnginesAsync(e => e.Count(x => !x!["routable"]!.GetValue<bool>()) == 1, TimeSpan.FromSeconds(10), "the killed engine out of rotation");
            Assert.Equal(2, view["engines"]!.AsArray().Count(x => x!["routable"]!.GetValue<bool>()));
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
    public async Task An_engine_answering_503_is_retried_elsewhere_and_no_healthy_engine_means_503_with_retry_after()
    {
        await using var broken = await EngineSimProcess.StartAsync(["--latency-preset", "instant", "--failure-rate", "1", "--failure-types", "service_unavailable"]);
        await using var healthy = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        await using var router = await RouterProcess.StartAsync(["--static-backends", $"{broken.BaseUrl},{healthy.BaseUrl}", "--routing-logic", "roundrobin"]);
        await router.WaitForEnginesAsync(e => e.Count(x => x!["routable"]!.GetValue<bool>()) == 2, TimeSpan.FromSeconds(15), "two routable engines");

        for (var i = 0; i < 6; i++)
        {
            var (status, _) = await OpenAiHttp.PostJsonAsync(router.Http, "v1/completions", Completion());
            Assert.Equal(200, status);
        }
        var metrics = await router.MetricsAsync();
        Assert.True(metrics.Sum("vllmstack:router_retries_total", ("reason", "status_503")) >= 1);
        Assert.True(metrics.Sum("vllmstack:router_ejections_total", ("reason", "gateway_status")) >= 1);

        healthy.Kill();
        broken.Kill();
        // Ejections alone would not stop traffic (panic routing spreads it over what passes its probes): the probes decide.
        await router.WaitForEnginesAsync(e => e.All(x => x!["health"]!.GetValue<string>() == "unhealthy"), TimeSpan.FromSeconds(10), "both engines failing their probes");
        using var response = await router.Http.PostAsJsonAsync("v1/completions", Completion());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.Equal("ServiceUnavailableError", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task An_engine_that_dies_mid_stream_ends_the_stream_with_an_error_frame()
    {
        await using var engine = await EngineSimProcess.StartAsync(["--latency-preset", "fast"]);
        await using var router = await RouterProcess.StartAsync(["--static-backends", engine.BaseUrl.ToString()]);
        await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "a routable engine");

        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = JsonContent.Create(Completion(50, stream: true)) };
        request.Headers.Add("x-vllmsim-abort-after-tokens", "3");
        using var response = await router.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("\"error\"", text);
        Assert.EndsWith("data: [DONE]\n\n", text);
    }

    [Fact]
    public async Task A_client_that_cancels_cancels_the_engine_request()
    {
        await using var engine = await EngineSimProcess.StartAsync(["--latency-preset", "fast", "--inter-token-latency-ms", "10"]);
        await using var router = await RouterProcess.StartAsync(["--static-backends", engine.BaseUrl.ToString()]);
        await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "a routable engine");

        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = JsonContent.Create(Completion(5000, stream: true)) };
            using var response = await router.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            await using var stream = await response.Content.ReadAsStreamAsync(cts.Token);
            using var reader = new StreamReader(stream);
            for (var events = 0; events < 3;)
            {
                if ((await reader.ReadLineAsync(cts.Token))?.StartsWith("data: ", StringComparison.Ordinal) == true)
                {
                    events++;
                }
            }
            Assert.Equal(1, (await engine.MetricsAsync()).Sum("vllm:num_requests_running"));
        }
        var clock = Stopwatch.StartNew();
        await engine.WaitForMetricsAsync(m => m.Sum("vllm:num_requests_running") == 0 && m.Sum("vllm:request_success_total", ("finished_reason", "abort")) == 1,
            TimeSpan.FromSeconds(10), "the engine request aborted");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task The_dynamic_config_adds_and_removes_engines_while_running()
    {
        await using var first = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        await using var second = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        var file = Path.Combine(Path.GetTempPath(), $"router-dynamic-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, $$"""{"static_backends": "{{first.BaseUrl}}", "static_models": "{{Model}}", "routing_logic": "roundrobin"}""");
        try
        {
            await using var router = await RouterProcess.StartAsync(["--dynamic-config-json", file]);
            await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "the first engine");

            await File.WriteAllTextAsync(file, $$"""{"static_backends": ["{{first.BaseUrl}}", "{{second.BaseUrl}}"], "routing_logic": "leastload"}""");
            var clock = Stopwatch.StartNew();
            var view = await router.WaitForEnginesAsync(e => e.Count == 2 && e.All(x => x!["routable"]!.GetValue<bool>()), TimeSpan.FromSeconds(5), "the second engine added");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"added after {clock.Elapsed}");
            Assert.Equal("leastload", view["routing_logic"]!.GetValue<string>());

            await File.WriteAllTextAsync(file, $$"""{"static_backends": "{{second.BaseUrl}}"}""");
            await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["url"]!.GetValue<string>() == second.BaseUrl.ToString(), TimeSpan.FromSeconds(5), "the first engine removed");
            var (status, _) = await OpenAiHttp.PostJsonAsync(router.Http, "v1/completions", Completion());
            Assert.Equal(200, status);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task A_model_without_engines_is_scaled_to_zero_answered_503_with_retry_after_and_counted_as_demand()
    {
        await using var engine = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        var file = Path.Combine(Path.GetTempPath(), $"router-zero-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, $$"""{"static_backends": ["{{engine.BaseUrl}}"]}""");
        try
        {
            await using var router = await RouterProcess.StartAsync(["--dynamic-config-json", file, "--scale-to-zero-models", "cold-model"]);
            await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "the engine");
            Assert.Equal(200, (await OpenAiHttp.PostJsonAsync(router.Http, "v1/completions", Completion())).Item1);

            // The autoscaler took the last replica away.
            await File.WriteAllTextAsync(file, """{"static_backends": []}""");
            await router.WaitForEnginesAsync(e => e.Count == 0, TimeSpan.FromSeconds(5), "no engine");
            async Task<(int Status, string? RetryAfter, string Body)> SendAsync(string model)
            {
                using var response = await router.Http.PostAsJsonAsync("v1/completions", new { model, prompt = "hello", max_tokens = 2 });
                return ((int)response.StatusCode, response.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    await response.Content.ReadAsStringAsync());
            }
            // A model it served before, and one configured as scalable to zero: 503 with Retry-After, counted.
            var served = await SendAsync(Model);
            Assert.Equal((503, "5"), (served.Status, served.RetryAfter));
            Assert.Contains("scaled to zero", System.Text.Json.Nodes.JsonNode.Parse(served.Body)!["error"]!["message"]!.GetValue<string>());
            Assert.Equal(503, (await SendAsync("cold-model")).Status);
            Assert.Equal(503, (await SendAsync("cold-model")).Status);
            // A model nobody ever served or configured is still unknown.
            Assert.Equal(404, (await SendAsync("no-such-model")).Status);

            var unserved = (await router.WaitForEnginesAsync(_ => true, TimeSpan.FromSeconds(1), "the view"))["unserved_requests"]!;
            Assert.Equal(1, unserved[Model]!.GetValue<long>());
            Assert.Equal(2, unserved["cold-model"]!.GetValue<long>());
            Assert.Null(unserved["no-such-model"]);
            var metrics = await router.MetricsAsync();
            Assert.Equal(2, metrics.Sum("vllmstack:router_unserved_requests_total", ("model", "cold-model")));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Client_keys_are_required_and_the_engine_key_replaces_them()
    {
        await using var engine = await EngineSimProcess.StartAsync(["--latency-preset", "instant", "--api-key", "engine-secret"]);
        await using var router = await RouterProcess.StartAsync(
            ["--static-backends", engine.BaseUrl.ToString(), "--api-keys", "client-one,client-two", "--engine-api-key", "engine-secret", "--Router:MaxRequestBodyBytes=4096"]);
        router.Http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "client-two");
        var authorised = router.Http;
        await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "a routable engine");

        using var anonymousClient = new HttpClient { BaseAddress = router.BaseUrl };
        var (anonymous, anonymousBody) = await OpenAiHttp.PostJsonAsync(anonymousClient, "v1/completions", Completion());
        Assert.Equal(401, anonymous);
        Assert.Equal("AuthenticationError", anonymousBody!["error"]!["type"]!.GetValue<string>());
        var (ok, _) = await OpenAiHttp.PostJsonAsync(authorised, "v1/completions", Completion());
        Assert.Equal(200, ok);
        var (tooBig, tooBigBody) = await OpenAiHttp.PostJsonAsync(authorised, "v1/completions", new { model = Model, prompt = new string('x', 8000) });
        Assert.Equal(413, tooBig);
        Assert.NotNull(tooBigBody!["error"]);
        Assert.Equal(HttpStatusCode.OK, (await anonymousClient.GetAsync("health")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymousClient.GetAsync("v1/models")).StatusCode);
        Assert.DoesNotContain("resilience test prompt", router.Output);
    }

    [Fact]
    public async Task An_adapter_loaded_at_runtime_becomes_routable_without_a_restart()
    {
        await using var engine = await EngineSimProcess.StartAsync(["--latency-preset", "instant", "--enable-lora"],
            new Dictionary<string, string> { ["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "true" });
        await using var router = await RouterProcess.StartAsync(["--static-backends", engine.BaseUrl.ToString()]);
        await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "a routable engine");
        var (before, _) = await OpenAiHttp.PostJsonAsync(router.Http, "v1/completions", new { model = "late-adapter", prompt = "x", max_tokens = 1 });
        Assert.Equal(404, before);

        using var adapters = new LoraAdapterFiles();
        using (var load = await engine.Http.PostAsJsonAsync("v1/load_lora_adapter", new { lora_name = "late-adapter", lora_path = adapters.Create("late") }))
        {
            load.EnsureSuccessStatusCode();
        }
        await router.WaitForEnginesAsync(e => e[0]!["models"]!.AsArray().Any(m => m!.GetValue<string>() == "late-adapter"), TimeSpan.FromSeconds(10), "the adapter listed");
        var (after, body) = await OpenAiHttp.PostJsonAsync(router.Http, "v1/completions", new { model = "late-adapter", prompt = "x", max_tokens = 1 });
        Assert.Equal(200, after);
        Assert.Equal("late-adapter", body!["model"]!.GetValue<string>());
    }

    [Fact]
    public async Task Refuses_to_start_with_invalid_settings()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => RouterProcess.StartAsync(["--routing-logic", "random-walk"]));
        Assert.Contains("--routing-logic must be one of", error.Message);
    }
}

/// <summary>Engines named the Aspire way, as an AppHost hands them to the router.</summary>
public sealed class AspireDiscoveryTests
{
    [Fact]
    public async Task Engines_come_from_services_variables()
    {
        await using var engine = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        await using var router = await RouterProcess.StartAsync([], new Dictionary<string, string> { ["services__engine__http__0"] = engine.BaseUrl.ToString() });
        await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "the engine from services__engine__http__0");
        var (status, _) = await OpenAiHttp.PostJsonAsync(router.Http, "v1/completions", new { model = EngineSimProcess.DefaultModel, prompt = "aspire", max_tokens = 2 });
        Assert.Equal(200, status);
    }
}

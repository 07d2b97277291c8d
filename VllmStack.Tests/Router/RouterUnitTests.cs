using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using VllmStack.Router.Discovery;
using VllmStack.Router.Engines;
using VllmStack.Router.Forwarding;
using VllmStack.Router.Stats;

namespace VllmStack.Tests.Router;

public sealed class RequestInspectorTests
{
    private static InspectedRequest Inspect(string json, string? sessionField = "x-user-id", bool wantPrompt = true) =>
        RequestInspector.Inspect(Encoding.UTF8.GetBytes(json), sessionField, wantPrompt);

    [Theory]
    [InlineData("""{"model":"m","max_tokens":1000,"priority":-3}""")]
    [InlineData("""{"model":"m","max_tokens":1000.0,"priority":-3.0}""")]
    [InlineData("""{"model":"m","max_tokens":"1000","priority":"-3"}""")]
    [InlineData("""{"model":"m","max_completion_tokens":"1000","priority":"-3"}""")]
    public void Token_limits_and_priority_are_read_as_vllm_takes_them(string json)
    {
        // pydantic's lax mode: an engine serves all of these, so admission control must count them all.
        var request = Inspect(json);
        Assert.Equal(1000, request.MaxTokens);
        Assert.Equal(-3, request.Priority);
    }

    [Theory]
    [InlineData("""{"model":"m","max_tokens":1000.5}""")]
    [InlineData("""{"model":"m","max_tokens":"1e3"}""")]
    [InlineData("""{"model":"m","max_tokens":"lots"}""")]
    [InlineData("""{"model":"m","max_tokens":true}""")]
    public void A_token_limit_that_is_no_integer_is_left_to_the_engine(string json) => Assert.Null(Inspect(json).MaxTokens);

    [Fact]
    public void Reads_model_session_and_chat_prompt_text_in_order()
    {
        var request = Inspect("""
            {"stream":true,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hello"},{"type":"image_url","image_url":{"url":"x"}}]}],
             "model":"llama","x-user-id":"u-42","user":"ignored-when-a-session-field-exists"}
            """);
        Assert.Equal("llama", request.Model);
        Assert.Equal("u-42", request.SessionKey);
        Assert.Equal("system\nBe brief.\nuser\nHello\n", request.PromptText);
    }

    [Fact]
    public void Falls_back_to_the_user_field_and_reads_completion_prompts()
    {
        var request = Inspect("""{"model":"m","prompt":["first","second"],"user":"alice"}""");
        Assert.Equal("alice", request.SessionKey);
        Assert.Equal("first\nsecond\n", request.PromptText);
        Assert.Equal("1,2,3,", Inspect("""{"model":"m","prompt":[1,2,3]}""").PromptText);
        Assert.Null(Inspect("""{"model":"m","prompt":"text"}""", wantPrompt: false).PromptText);
    }

    [Theory]
    [InlineData("[1,2]")]
    [InlineData("{\"model\": ")]
    [InlineData("not json")]
    public void Rejects_bodies_that_are_not_json_objects(string body) =>
        Assert.ThrowsAny<JsonException>(() => Inspect(body));
}

public sealed class DynamicConfigTests
{
    [Fact]
    public void Accepts_comma_lists_and_arrays_and_pairs_models_with_backends()
    {
        var config = DynamicConfigEngineSource.Parse("""{"static_backends":"http://a:1, http://b:2/","static_models":["m1","m2"],"routing_logic":"session"}"""u8);
        Assert.Equal(2, config.Backends.Count);
        Assert.Equal("m2", config.Models[new Uri("http://b:2/")]);
        Assert.Equal("session", config.RoutingLogic);
    }

    [Theory]
    [InlineData("""{"static_backends":"ftp://a"}""")]
    [InlineData("""{"static_backends":"http://a:1","static_models":"m1,m2"}""")]
    [InlineData("""{"routing_logic":"random"}""")]
    [InlineData("""[]""")]
    public void Rejects_what_it_cannot_apply(string json) =>
        Assert.ThrowsAny<Exception>(() => DynamicConfigEngineSource.Parse(Encoding.UTF8.GetBytes(json)));
}

public sealed class EngineStatsReadingTests
{
    [Fact]
    public void Reads_vllm_v1_names_summing_across_models()
    {
        var load = EngineStatsScraper.Read("""
            vllm:num_requests_running{engine="0",model_name="a"} 3
            vllm:num_requests_running{engine="0",model_name="b"} 2
            vllm:num_requests_waiting{engine="0",model_name="a"} 4
            vllm:kv_cache_usage_perc{engine="0",model_name="a"} 0.25
            vllm:prefix_cache_queries_total{engine="0",model_name="a"} 200
            vllm:prefix_cache_hits_total{engine="0",model_name="a"} 50
            """, routerInFlight: 7, DateTimeOffset.UnixEpoch);
        Assert.Equal((5, 4, 0.25, 0.25, 7), (load.Running, load.Waiting, load.KvCacheUsage, load.PrefixCacheHitRate, load.RouterInFlightAtScrape));
    }

    [Fact]
    public void Reads_the_older_gpu_names()
    {
        var load = EngineStatsScraper.Read("""
            vllm:num_requests_running{model_name="a"} 1
            vllm:gpu_cache_usage_perc{model_name="a"} 0.5
            vllm:gpu_prefix_cache_hit_rate{model_name="a"} 0.3
            """, 0, DateTimeOffset.UnixEpoch);
        Assert.Equal((1, 0.5, 0.3), (load.Running, load.KvCacheUsage, load.PrefixCacheHitRate));
    }

    [Fact]
    public void Reads_an_engine_that_exposes_only_the_deprecated_counter_names()
    {
        // vLLM 0.9.1 and earlier V1 engines: no kv_cache_usage_perc or prefix_cache_* yet.
        var load = EngineStatsScraper.Read("""
            vllm:num_requests_running{engine="0",model_name="a"} 2.0
            vllm:num_requests_waiting{engine="0",model_name="a"} 1.0
            vllm:gpu_cache_usage_perc{engine="0",model_name="a"} 0.75
            vllm:gpu_prefix_cache_queries_total{engine="0",model_name="a"} 400.0
            vllm:gpu_prefix_cache_hits_total{engine="0",model_name="a"} 100.0
            """, 0, DateTimeOffset.UnixEpoch);
        Assert.Equal((2, 1, 0.75, 0.25), (load.Running, load.Waiting, load.KvCacheUsage, load.PrefixCacheHitRate));
    }

    [Fact]
    public void Reads_an_engine_that_exposes_the_deprecated_names_beside_the_new_ones()
    {
        // vLLM 0.9.2–0.10, or 0.11 with --show-hidden-metrics-for-version 0.10: both names, the same values.
        var load = EngineStatsScraper.Read("""
            vllm:gpu_cache_usage_perc{engine="0",model_name="a"} 0.5
            vllm:kv_cache_usage_perc{engine="0",model_name="a"} 0.5
            vllm:gpu_prefix_cache_queries_total{engine="0",model_name="a"} 400.0
            vllm:gpu_prefix_cache_hits_total{engine="0",model_name="a"} 300.0
            vllm:prefix_cache_queries_total{engine="0",model_name="a"} 400.0
            vllm:prefix_cache_hits_total{engine="0",model_name="a"} 300.0
            """, 0, DateTimeOffset.UnixEpoch);
        Assert.Equal((0.5, 0.75), (load.KvCacheUsage, load.PrefixCacheHitRate));
    }

    [Fact]
    public void Load_score_adds_other_clients_load_to_the_routers_live_count()
    {
        var engine = new Engine(1, new Uri("http://127.0.0.1:1/"));
        engine.SetLoad(new EngineLoad(Running: 6, Waiting: 2, 0, 0, RouterInFlightAtScrape: 3, DateTimeOffset.UtcNow));
        engine.BeginRequest();
        Assert.Equal(1 + (6 + 2 - 3), engine.LoadScore);
    }

    [Fact]
    public void Ejections_double_up_to_the_maximum_and_an_answer_starts_the_back_off_over()
    {
        var engine = new Engine(1, new Uri("http://127.0.0.1:1/"));
        TimeSpan Eject() => engine.Eject(DateTimeOffset.UnixEpoch, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5));
        Assert.Equal([1.0, 2.0, 4.0, 5.0], [Eject().TotalSeconds, Eject().TotalSeconds, Eject().TotalSeconds, Eject().TotalSeconds]);
        Assert.True(engine.IsEjected(DateTimeOffset.UnixEpoch));
        engine.CountAnswer();
        Assert.Equal(1.0, Eject().TotalSeconds);
    }

    [Fact]
    public void A_5xx_answer_ends_a_gateway_streak_but_not_a_5xx_streak()
    {
        var engine = new Engine(1, new Uri("http://127.0.0.1:1/"));
        Assert.Equal((1, 1), engine.CountFailure(gatewayFailure: true));
        Assert.Equal((2, 2), engine.CountFailure(gatewayFailure: true));
        Assert.Equal((0, 3), engine.CountFailure(gatewayFailure: false));
        engine.CountAnswer();
        Assert.Equal((0, 1), engine.CountFailure(gatewayFailure: false));
    }

    [Fact]
    public void Request_stats_average_what_completed_in_the_window()
    {
        var window = new RequestStatsWindow(TimeSpan.FromSeconds(60));
        window.Arrived();
        window.Arrived();
        window.Completed(latencySeconds: 1.0, ttftSeconds: 0.2, itlSeconds: 0.01, itlCount: 10);
        window.Completed(latencySeconds: 3.0, ttftSeconds: null, itlSeconds: null, itlCount: 0);
        window.Failed();
        var snapshot = window.Snapshot();
        Assert.Equal((2.0, 0.2, 0.01, 2L, 1L), (snapshot.AvgLatency, snapshot.AvgTtft, snapshot.AvgItl, snapshot.Requests, snapshot.Failures));
        Assert.True(snapshot.Qps > 0);
    }
}

public sealed class ProxyHeaderTests
{
    [Fact]
    public void Hop_by_hop_headers_stay_and_the_engine_key_replaces_the_clients()
    {
        var incoming = new HeaderDictionary
        {
            ["Connection"] = "keep-alive, X-Private",
            ["X-Private"] = "named by Connection",
            ["Keep-Alive"] = "timeout=5",
            ["Transfer-Encoding"] = "chunked",
            ["Authorization"] = "Bearer client-key",
            ["x-request-id"] = "from-client",
            ["X-Custom"] = "kept",
            ["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        };
        using var upstream = new HttpRequestMessage(HttpMethod.Post, "http://engine/v1/completions") { Content = new ByteArrayContent([]) };
        ProxyHeaders.CopyToUpstream(incoming, upstream, "chosen-id", "engine-key");

        Assert.False(upstream.Headers.Contains("Connection"));
        Assert.False(upstream.Headers.Contains("X-Private"));
        Assert.False(upstream.Headers.Contains("Keep-Alive"));
        Assert.False(upstream.Headers.Contains("Transfer-Encoding"));
        Assert.Equal("Bearer engine-key", upstream.Headers.Authorization!.ToString());
        Assert.Equal(["chosen-id"], upstream.Headers.GetValues("x-request-id"));
        Assert.Equal(["kept"], upstream.Headers.GetValues("X-Custom"));
        Assert.True(upstream.Headers.Contains("traceparent"));
    }
}

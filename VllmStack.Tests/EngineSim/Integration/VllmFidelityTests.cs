using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.EngineSim.Integration;

/// <summary>A simulator with the generation-side flags a deployment passes, shared by the fidelity tests.</summary>
public sealed class FidelitySimFixture : SimFixture
{
    protected override IEnumerable<string> Args =>
    [
        "--latency-preset", "instant", "--output-mode", "echo", "--max-model-len", "4096", "--served-model-name", "alpha", "beta",
        "--api-key", "sim-key", "--enable-request-id-headers", "--enable-auto-tool-choice", "--tool-call-parser", "llama3_json",
        "--disable-uvicorn-access-log", "--max-log-len", "100", "--allowed-origins", "[\"*\"]", "--root-path", "/", "--kv-cache-memory-bytes", "1073741824",
    ];
}

/// <summary>
/// Where EngineSim behaves as vLLM 0.11 does and once did not (each test failed on the older simulator): stream framing,
/// default lengths, lax parsing, error types and wording, authentication, response fields, logprobs, tools, flags.
/// </summary>
public sealed class VllmFidelityTests(FidelitySimFixture fixture) : IClassFixture<FidelitySimFixture>
{
    private HttpClient Http
    {
        get
        {
            fixture.Sim.Http.DefaultRequestHeaders.Authorization ??= new AuthenticationHeaderValue("Bearer", "sim-key");
            return fixture.Sim.Http;
        }
    }

    private static object Chat(string content, object? extra = null) => Merge(new { model = "alpha", messages = new[] { new { role = "user", content } } }, extra);

    private static JsonObject Merge(object body, object? extra)
    {
        var node = JsonSerializerNode(body);
        foreach (var (key, value) in extra is null ? [] : JsonSerializerNode(extra))
        {
            node[key] = value?.DeepClone();
        }
        return node;
    }

    private static JsonObject JsonSerializerNode(object value) => System.Text.Json.JsonSerializer.SerializeToNode(value)!.AsObject();

    [Fact]
    public async Task A_chat_stream_opens_with_a_separate_role_chunk_and_empty_stream_options_mean_usage()
    {
        var streamed = await OpenAiHttp.StreamAsync(Http, "v1/chat/completions", Chat("two words", new { stream = true, stream_options = new { } }));
        var first = streamed.Chunks[0]["choices"]![0]!;
        Assert.Equal("""{"role":"assistant","content":""}""", first["delta"]!.ToJsonString());
        Assert.Null(streamed.Chunks[1]["choices"]![0]!["delta"]!["role"]);
        Assert.Equal("two words", streamed.Text);
        // Chat chunks carry no usage field unless continuous stats are asked for; the last chunk is the usage.
        Assert.All(streamed.Chunks.SkipLast(1), c => Assert.False(c.AsObject().ContainsKey("usage")));
        var usage = streamed.Chunks[^1];
        Assert.Empty(usage["choices"]!.AsArray());
        Assert.False(usage["usage"]!.AsObject().ContainsKey("prompt_tokens_details"));
        var (_, whole) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", Chat("two words"));
        Assert.Equal(whole!["usage"]!["completion_tokens"]!.GetValue<int>(), usage["usage"]!["completion_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task Continuous_usage_stats_count_every_chunk_and_completion_chunks_always_have_a_usage_field()
    {
        var streamed = await OpenAiHttp.StreamAsync(Http, "v1/chat/completions",
            Chat("one two three", new { stream = true, stream_options = new { include_usage = true, continuous_usage_stats = true } }));
        var counts = streamed.Chunks.SkipLast(1).Select(c => c["usage"]!["completion_tokens"]!.GetValue<int>()).ToList();
        Assert.Equal(0, counts[0]);
        Assert.Equal(counts.Order(), counts);
        Assert.All(streamed.Chunks, c => Assert.True(c["usage"]!["prompt_tokens"]!.GetValue<int>() > 0));

        var completion = await OpenAiHttp.StreamAsync(Http, "v1/completions", new { model = "alpha", prompt = "a b", max_tokens = 3, stream = true });
        // Completion chunks are dumped with every field: usage and stop_reason are there, null.
        Assert.All(completion.Chunks, c => Assert.True(c.AsObject().ContainsKey("usage") && c["usage"] is null));
        Assert.All(completion.Chunks, c => Assert.True(c["choices"]![0]!.AsObject().ContainsKey("stop_reason")));
    }

    [Fact]
    public async Task A_completion_without_max_tokens_generates_at_most_16_tokens_and_a_chat_the_rest_of_the_context()
    {
        var (_, completion) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = "alpha", prompt = "one two three four five six seven eight nine ten", ignore_eos = true });
        Assert.Equal(16, completion!["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.Equal("length", completion["choices"]![0]!["finish_reason"]!.GetValue<string>());

        var (_, chat) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", Chat("one two three", new { ignore_eos = true, min_tokens = 40 }));
        Assert.True(chat!["usage"]!["completion_tokens"]!.GetValue<int>() > 16);
    }

    [Fact]
    public async Task Fields_are_parsed_as_laxly_as_pydantic_parses_them()
    {
        var (status, body) = await OpenAiHttp.PostRawAsync(Http, "v1/completions",
            """{"model":"alpha","prompt":"a b c d e f","max_tokens":"5","n":1.0,"ignore_eos":"true","temperature":3,"seed":"7"}""");
        Assert.Equal(200, status);
        Assert.Equal(5, body!["usage"]!["completion_tokens"]!.GetValue<int>());
        using var streamed = await Http.PostAsync("v1/completions",
            new StringContent("""{"model":"alpha","prompt":"x","max_tokens":2,"stream":"true"}""", Encoding.UTF8, "application/json"));
        Assert.Equal("text/event-stream", streamed.Content.Headers.ContentType?.MediaType);
        var (fraction, fractionBody) = await OpenAiHttp.PostRawAsync(Http, "v1/completions", """{"model":"alpha","prompt":"x","max_tokens":2.5}""");
        Assert.Equal((400, "Bad Request"), (fraction, fractionBody!["error"]!["type"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Custom_roles_are_accepted_and_a_generation_prompt_cannot_go_with_continuing_the_final_message()
    {
        var (custom, _) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions",
            new { model = "alpha", messages = new object[] { new { role = "user", content = "hi" }, new { role = "ipython", content = "{\"result\": 4}" } }, max_tokens = 2 });
        Assert.Equal(200, custom);

        var (both, bothBody) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", Chat("hi", new { add_generation_prompt = true, continue_final_message = true }));
        Assert.Equal((400, "Bad Request"), (both, bothBody!["error"]!["type"]!.GetValue<string>()));
        Assert.Equal("Cannot set both `continue_final_message` and `add_generation_prompt` to True.", bothBody["error"]!["message"]!.GetValue<string>());

        // Continuing an assistant message: the stream's role is that message's role, and the prompt keeps it open.
        var prefill = new { model = "alpha", messages = new object[] { new { role = "user", content = "hi" }, new { role = "assistant", content = "Hello the" } },
            add_generation_prompt = false, continue_final_message = true, max_tokens = 3, stream = true };
        var streamed = await OpenAiHttp.StreamAsync(Http, "v1/chat/completions", prefill);
        Assert.Equal("assistant", streamed.Chunks[0]["choices"]![0]!["delta"]!["role"]!.GetValue<string>());
        var (_, open) = await OpenAiHttp.PostJsonAsync(Http, "tokenize", new { model = "alpha", prefill.messages, add_generation_prompt = false, continue_final_message = true });
        var (_, closed) = await OpenAiHttp.PostJsonAsync(Http, "tokenize", new { model = "alpha", prefill.messages, add_generation_prompt = false });
        Assert.Equal(closed!["count"]!.GetValue<int>() - 1, open!["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task The_response_names_the_first_served_model_and_has_every_field_vllm_returns()
    {
        var (status, chat) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", new { model = "beta", messages = new[] { new { role = "user", content = "x" } }, max_tokens = 2 });
        Assert.Equal(200, status);
        Assert.Equal("alpha", chat!["model"]!.GetValue<string>());
        foreach (var key in new[] { "service_tier", "system_fingerprint", "prompt_logprobs", "kv_transfer_params" })
        {
            Assert.True(chat.AsObject().ContainsKey(key), key);
        }
        var message = chat["choices"]![0]!["message"]!.AsObject();
        Assert.Equal(["role", "content", "refusal", "annotations", "audio", "function_call", "tool_calls", "reasoning_content"], message.Select(p => p.Key));
        var (_, completion) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = "beta", prompt = "x", max_tokens = 2 });
        Assert.Equal("alpha", completion!["model"]!.GetValue<string>());
        Assert.True(completion["choices"]![0]!.AsObject().ContainsKey("prompt_logprobs"));
        Assert.True(completion.AsObject().ContainsKey("kv_transfer_params"));
    }

    [Fact]
    public async Task Logprobs_are_deterministic_in_vllms_shapes_and_validated_as_vllm_validates_them()
    {
        var request = Chat("three small words", new { logprobs = true, top_logprobs = 3, max_tokens = 3 });
        var (_, first) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", request);
        var (_, second) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", request);
        var content = first!["choices"]![0]!["logprobs"]!["content"]!.AsArray();
        Assert.Equal(3, content.Count);
        Assert.All(content, token =>
        {
            var top = token!["top_logprobs"]!.AsArray();
            Assert.Equal(3, top.Count);
            Assert.Equal(token["token"]!.GetValue<string>(), top[0]!["token"]!.GetValue<string>());
            Assert.True(token["logprob"]!.GetValue<double>() < 0);
            Assert.Equal(Encoding.UTF8.GetBytes(token["token"]!.GetValue<string>()), token["bytes"]!.AsArray().Select(b => (byte)b!.GetValue<int>()));
        });
        Assert.Equal(first["choices"]![0]!["logprobs"]!.ToJsonString(), second!["choices"]![0]!["logprobs"]!.ToJsonString());

        var (_, completion) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = "alpha", prompt = "a b c", logprobs = 2, max_tokens = 2, ignore_eos = true });
        var logprobs = completion!["choices"]![0]!["logprobs"]!;
        Assert.Equal(2, logprobs["tokens"]!.AsArray().Count);
        Assert.Equal(0, logprobs["text_offset"]![0]!.GetValue<int>());
        Assert.Equal(2, logprobs["top_logprobs"]![0]!.AsObject().Count);

        async Task<(int, string)> Refused(object body)
        {
            var (status, answer) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", body);
            return (status, answer!["error"]!["message"]!.GetValue<string>());
        }
        Assert.Equal((400, "when using `top_logprobs`, `logprobs` must be set to true."), await Refused(Chat("x", new { top_logprobs = 2 })));
        Assert.Equal((400, "Requested sample logprobs of 21, which is greater than max allowed: 20"), await Refused(Chat("x", new { logprobs = true, top_logprobs = 21 })));
        Assert.Equal((400, "`prompt_logprobs` are not available when `stream=True`."), await Refused(Chat("x", new { prompt_logprobs = 1, stream = true })));
    }

    [Fact]
    public async Task Tools_mean_auto_tool_choice_which_needs_the_server_flags()
    {
        object Tools(object? choice = null) => Merge(Chat("weather?", new { max_tokens = 2 }),
            choice is null
                ? new { tools = new[] { new { type = "function", function = new { name = "get_weather" } } } }
                : new { tools = new[] { new { type = "function", function = new { name = "get_weather" } } }, tool_choice = choice });
        Assert.Equal(200, (await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", Tools())).Item1);
        var (noTools, noToolsBody) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", Chat("x", new { tool_choice = "required" }));
        Assert.Equal((400, "When using `tool_choice`, `tools` must be set."), (noTools, noToolsBody!["error"]!["message"]!.GetValue<string>()));
        var (unknown, unknownBody) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", Tools(new { type = "function", function = new { name = "other" } }));
        Assert.Equal((400, "The tool specified in `tool_choice` does not match any of the specified `tools`"), (unknown, unknownBody!["error"]!["message"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Unauthorised_requests_get_vllms_own_401_body_and_preflights_pass()
    {
        using var anonymous = new HttpClient { BaseAddress = fixture.Sim.BaseUrl };
        using var response = await anonymous.PostAsJsonAsync("v1/completions", new { model = "alpha", prompt = "x" });
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("""{"error":"Unauthorized"}""", await response.Content.ReadAsStringAsync());
        using var lowerCase = new HttpRequestMessage(HttpMethod.Get, "v1/models");
        lowerCase.Headers.TryAddWithoutValidation("Authorization", "bearer sim-key");
        Assert.Equal(HttpStatusCode.OK, (await anonymous.SendAsync(lowerCase)).StatusCode);
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "v1/completions");
        Assert.NotEqual(HttpStatusCode.Unauthorized, (await anonymous.SendAsync(preflight)).StatusCode);
    }

    [Fact]
    public async Task Request_id_headers_come_on_every_response_with_the_flag_and_deployment_flags_are_accepted()
    {
        using var models = await Http.GetAsync("v1/models");
        Assert.Matches("^[0-9a-f]{32}$", models.Headers.GetValues("x-request-id").Single());
        using var request = new HttpRequestMessage(HttpMethod.Get, "v1/no-such-route");
        request.Headers.Add("x-request-id", "mine-1");
        using var missing = await Http.SendAsync(request);
        Assert.Equal("mine-1", missing.Headers.GetValues("x-request-id").Single());
        Assert.Contains("Accepted without effect in a simulation: --disable-uvicorn-access-log", fixture.Sim.Output);
        // --kv-cache-memory-bytes sized the cache: 1 GiB of 16-token blocks at 128 KiB a token.
        var info = (await fixture.Sim.MetricsAsync()).Single(s => s.Name == "vllm:cache_config_info");
        Assert.Equal("512", info.Labels["num_gpu_blocks"]);

        await using var plain = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        using var answer = await plain.Http.PostAsJsonAsync("v1/completions", new { model = EngineSimProcess.DefaultModel, prompt = "x", max_tokens = 1 });
        Assert.False(answer.Headers.Contains("x-request-id"));
    }
}

/// <summary>Behaviours that need a simulator of their own: priority scheduling and vLLM's ways of failing mid-stream.</summary>
public sealed class VllmSchedulingAndFailureTests
{
    [Fact]
    public async Task Priority_needs_the_priority_policy_and_then_orders_the_waiting_queue()
    {
        await using var fcfs = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        var (status, body) = await OpenAiHttp.PostJsonAsync(fcfs.Http, "v1/completions", new { model = EngineSimProcess.DefaultModel, prompt = "x", priority = 3 });
        Assert.Equal((400, "Got priority 3 but Priority scheduling is not enabled."), (status, body!["error"]!["message"]!.GetValue<string>()));

        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "fast", "--inter-token-latency-ms", "20", "--max-num-seqs", "1", "--scheduling-policy", "priority"]);
        var order = new System.Collections.Concurrent.ConcurrentQueue<string>();
        async Task RunAsync(string name, int priority, int tokens)
        {
            var (s, _) = await OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions",
                new { model = EngineSimProcess.DefaultModel, prompt = name, max_tokens = tokens, ignore_eos = true, priority });
            Assert.Equal(200, s);
            order.Enqueue(name);
        }
        var blocker = RunAsync("blocker", 0, 100);
        await sim.WaitForMetricsAsync(m => m.Sum("vllm:num_requests_running") == 1, TimeSpan.FromSeconds(10), "the blocker running");
        // Each request runs for hundreds of milliseconds, so that the order in which this client sees them finish is the
        // engine's order even when a busy machine delays a continuation.
        var low = RunAsync("low", 9, 15);
        await sim.WaitForMetricsAsync(m => m.Sum("vllm:num_requests_waiting") == 1, TimeSpan.FromSeconds(10), "the low-priority request waiting");
        var high = RunAsync("high", -1, 15);
        await Task.WhenAll(blocker, low, high);
        Assert.Equal(["blocker", "high", "low"], order);
    }

    [Fact]
    public async Task A_mid_stream_failure_can_look_like_vllms_error_frame_or_a_dying_process()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "fast"]);
        async Task<(string Text, Exception? Error)> StreamAsync(string mode)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
            {
                Content = JsonContent.Create(new { model = EngineSimProcess.DefaultModel, messages = new[] { new { role = "user", content = "x" } }, max_tokens = 20, ignore_eos = true, stream = true }),
            };
            request.Headers.Add("x-vllmsim-abort-after-tokens", "3");
            request.Headers.Add("x-vllmsim-abort-mode", mode);
            using var response = await sim.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            await using var body = await response.Content.ReadAsStreamAsync();
            var bytes = new List<byte>();
            var buffer = new byte[4096];
            try
            {
                int read;
                while ((read = await body.ReadAsync(buffer)) > 0)
                {
                    bytes.AddRange(buffer[..read]);
                }
                return (Encoding.UTF8.GetString([.. bytes]), null);
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                return (Encoding.UTF8.GetString([.. bytes]), e);
            }
        }

        var (frame, frameError) = await StreamAsync("error-frame");
        Assert.Null(frameError);
        Assert.Contains("EngineCore encountered an issue", frame);
        Assert.Contains("\"type\":\"BadRequestError\"", frame);
        Assert.EndsWith("data: [DONE]\n\n", frame);

        var (cut, cutError) = await StreamAsync("close");
        Assert.NotNull(cutError);
        Assert.EndsWith("data: {\"id\":\"chatcmpl-", cut);

        using var bad = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = JsonContent.Create(new { model = EngineSimProcess.DefaultModel, prompt = "x" }) };
        bad.Headers.Add("x-vllmsim-abort-mode", "explode");
        Assert.Equal(HttpStatusCode.BadRequest, (await sim.Http.SendAsync(bad)).StatusCode);
    }
}

using System.Net.Http.Json;
using System.Net;
using System.Text.Json.Nodes;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.EngineSim.Integration;

/// <summary>The API's contract in detail, against an echo-mode simulator so that answers are predictable.</summary>
public sealed class ApiBehaviourTests(EchoSimFixture fixture) : IClassFixture<EchoSimFixture>
{
    private const string Model = EngineSimProcess.DefaultModel;
    private HttpClient Http => fixture.Sim.Http;

    private static void AssertError(int status, JsonNode? body, int expectedStatus, string? param = null)
    {
        Assert.Equal(expectedStatus, status);
        var error = body!["error"]!;
        Assert.False(string.IsNullOrWhiteSpace(error["message"]!.GetValue<string>()));
        Assert.False(string.IsNullOrWhiteSpace(error["type"]!.GetValue<string>()));
        Assert.Equal(expectedStatus, error["code"]!.GetValue<int>());
        Assert.True(error.AsObject().ContainsKey("param"));
        if (param is not null)
        {
            Assert.Equal(param, error["param"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task Echo_mode_answers_with_the_last_user_message()
    {
        var (status, body) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", new
        {
            model = Model,
            messages = new object[] { new { role = "system", content = "ignored" }, new { role = "user", content = "Repeat after me, please." } },
        });
        Assert.Equal(200, status);
        Assert.Equal("Repeat after me, please.", body!["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal("stop", body["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.Equal("assistant", body["choices"]![0]!["message"]!["role"]!.GetValue<string>());
    }

    [Fact]
    public async Task Stop_strings_cut_the_output_in_both_modes_and_report_the_stop_reason()
    {
        var request = new { model = Model, prompt = "alpha beta gamma delta", stop = new[] { "gamma" }, max_tokens = 50 };
        var (_, body) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", request);
        Assert.Equal("alpha beta ", body!["choices"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("stop", body["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.Equal("gamma", body["choices"]![0]!["stop_reason"]!.GetValue<string>());

        var streamed = await OpenAiHttp.StreamAsync(Http, "v1/completions",
            new { model = Model, prompt = "alpha beta gamma delta", stop = new[] { "gam" }, max_tokens = 50, stream = true });
        Assert.Equal("alpha beta ", streamed.Text);
        Assert.Equal("gam", streamed.Chunks[^1]["choices"]![0]!["stop_reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task Ignore_eos_and_min_tokens_control_the_length()
    {
        var (_, exact) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = Model, prompt = "one two", max_tokens = 9, ignore_eos = true });
        Assert.Equal(9, exact!["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.Equal("length", exact["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.StartsWith(" one two one two", exact["choices"]![0]!["text"]!.GetValue<string>() is var t ? " " + t : "");

        var (_, natural) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = Model, prompt = "one two", max_tokens = 9 });
        Assert.Equal(3, natural!["usage"]!["completion_tokens"]!.GetValue<int>()); // " one", " two", end of text

        var (_, atLeast) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = Model, prompt = "one two", max_tokens = 9, min_tokens = 5 });
        Assert.True(atLeast!["usage"]!["completion_tokens"]!.GetValue<int>() >= 5);
    }

    [Fact]
    public async Task Several_choices_and_several_prompts_are_indexed_and_counted()
    {
        var (_, body) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = Model, prompt = new[] { "first prompt", "second one" }, n = 2, max_tokens = 3, ignore_eos = true });
        var choices = body!["choices"]!.AsArray();
        Assert.Equal([0, 1, 2, 3], choices.Select(c => c!["index"]!.GetValue<int>()));
        Assert.Equal(12, body["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.StartsWith("first", choices[1]!["text"]!.GetValue<string>());
        Assert.StartsWith("second", choices[2]!["text"]!.GetValue<string>());

        var streamed = await OpenAiHttp.StreamAsync(Http, "v1/chat/completions",
            new { model = Model, messages = new[] { new { role = "user", content = "abc def" } }, n = 3, stream = true });
        var indices = streamed.Chunks.SelectMany(c => c["choices"]!.AsArray()).Select(c => c!["index"]!.GetValue<int>()).ToHashSet();
        Assert.Equal([0, 1, 2], indices.Order());
        var roles = streamed.Chunks.SelectMany(c => c["choices"]!.AsArray()).Count(c => c!["delta"]!["role"] is not null);
        Assert.Equal(3, roles);
    }

    [Fact]
    public async Task Stream_frames_follow_the_openai_sse_format()
    {
        var streamed = await OpenAiHttp.StreamAsync(Http, "v1/chat/completions", new
        {
            model = Model,
            messages = new[] { new { role = "user", content = "Short answer" } },
            stream = true,
            stream_options = new { include_usage = true },
        });
        Assert.All(streamed.RawEvents, e => Assert.Matches("^data: .+\n$", e));
        Assert.Equal("data: [DONE]\n", streamed.RawEvents[^1]);
        Assert.All(streamed.Chunks, c => Assert.Equal("chat.completion.chunk", c["object"]!.GetValue<string>()));
        Assert.Single(streamed.Chunks.Select(c => c["id"]!.GetValue<string>()).Distinct());
        var usage = streamed.Chunks[^1];
        Assert.Empty(usage["choices"]!.AsArray());
        Assert.Equal(4, usage["usage"]!["completion_tokens"]!.GetValue<int>()); // "Short", " answ", "er", end of turn
        Assert.Equal("Short answer", streamed.Text);
    }

    [Fact]
    public async Task Client_mistakes_are_400s_typed_as_vllm_types_them()
    {
        // Schema errors (pydantic, before any serving code) are typed with the status phrase, "Bad Request"...
        static void Schema(int status, JsonNode? body) => Assert.Equal((400, "Bad Request"), (status, body!["error"]!["type"]!.GetValue<string>()));
        // ...errors of the serving code (sampling parameters, context length) are "BadRequestError".
        static void Serving(int status, JsonNode? body) => Assert.Equal((400, "BadRequestError"), (status, body!["error"]!["type"]!.GetValue<string>()));
        var (s1, b1) = await OpenAiHttp.PostRawAsync(Http, "v1/chat/completions", "{\"model\": ");
        AssertError(s1, b1, 400);
        var (s2, b2) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", new { model = Model, messages = new[] { new { role = "user", content = "x" } }, max_tokens = "ten" });
        Schema(s2, b2);
        var (s3, b3) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", new { model = Model, messages = new[] { new { content = "x" } } });
        Schema(s3, b3);
        var (s5, b5) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = Model });
        Schema(s5, b5);
        Assert.Equal("At least one of `prompt` or `prompt_embeds` must be set.", b5!["error"]!["message"]!.GetValue<string>());
        var (s6, b6) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = Model, prompt = new[] { 1, -5 } });
        AssertError(s6, b6, 400, "prompt");
        var (s7, b7) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = Model, prompt = "x", n = 0 });
        Serving(s7, b7);
        Assert.Equal("n must be at least 1, got 0.", b7!["error"]!["message"]!.GetValue<string>());
        var (s8, b8) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = Model, prompt = "x", temperature = -0.5 });
        Serving(s8, b8);
        Assert.Equal("temperature must be non-negative, got -0.5.", b8!["error"]!["message"]!.GetValue<string>());
        var (s9, b9) = await OpenAiHttp.PostRawAsync(Http, "v1/completions", "[1,2]");
        AssertError(s9, b9, 400);
        var (s10, b10) = await OpenAiHttp.PostRawAsync(Http, "v1/completions", "prompt=x", "application/x-www-form-urlencoded");
        Schema(s10, b10);
        Assert.Equal("Unsupported Media Type: Only 'application/json' is allowed", b10!["error"]!["message"]!.GetValue<string>());
        var (s11, b11) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = "gpt-nonexistent", prompt = "x" });
        AssertError(s11, b11, 404, "model");
        // The schema is checked before the model: an unknown model with a bad field is a 400.
        var (s12, b12) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = "gpt-nonexistent", prompt = "x", max_tokens = "many" });
        Schema(s12, b12);
        var (s13, b13) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = Model, prompt = "" });
        Serving(s13, b13);
        // Routing's own answers are Starlette's, as in vLLM: not OpenAI error objects.
        using var missing = await Http.GetAsync("v1/nothing-here");
        Assert.Equal((HttpStatusCode.NotFound, """{"detail":"Not Found"}"""), (missing.StatusCode, await missing.Content.ReadAsStringAsync()));
        using var wrongMethod = await Http.GetAsync("v1/completions");
        Assert.Equal((HttpStatusCode.MethodNotAllowed, """{"detail":"Method Not Allowed"}"""), (wrongMethod.StatusCode, await wrongMethod.Content.ReadAsStringAsync()));
    }

    [Fact]
    public async Task Prompts_longer_than_the_context_are_refused_in_vllm_0_11_words()
    {
        var prompt = string.Join(' ', Enumerable.Repeat("word", 2100));
        var (status, body) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = Model, prompt });
        AssertError(status, body, 400);
        Assert.Equal("This model's maximum context length is 2048 tokens. However, your request has 2101 input tokens. Please reduce the length of the input messages.",
            body!["error"]!["message"]!.GetValue<string>());

        var fits = string.Join(' ', Enumerable.Repeat("word", 2000));
        var (tooMuch, tooMuchBody) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = Model, prompt = fits, max_tokens = 100 });
        AssertError(tooMuch, tooMuchBody, 400);
        Assert.Equal("'max_tokens' or 'max_completion_tokens' is too large: 100. This model's maximum context length is 2048 tokens and your request has 2001 input tokens (100 > 2048 - 2001).",
            tooMuchBody!["error"]!["message"]!.GetValue<string>());

        // Chat's preprocessing appends the exception's cause, None, as vLLM's does; clients parse the numbers before it.
        var (chat, chatBody) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", new { model = Model, messages = new[] { new { role = "user", content = fits } }, max_tokens = 100 });
        AssertError(chat, chatBody, 400);
        Assert.Matches(@"^'max_tokens' or 'max_completion_tokens' is too large: 100\. .* your request has \d+ input tokens \(100 > 2048 - \d+\)\. None$",
            chatBody!["error"]!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Injected_faults_answer_with_the_forced_status_and_mid_stream_drops_free_the_engine()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions")
        {
            Content = System.Net.Http.Json.JsonContent.Create(new { model = Model, prompt = "x" }),
        };
        request.Headers.Add("x-vllmsim-force-status", "503");
        using var response = await Http.SendAsync(request);
        AssertError((int)response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync()), 503);

        var before = (await fixture.Sim.MetricsAsync()).Sum("vllm:request_success_total", ("finished_reason", "abort"));
        using var dropping = new HttpRequestMessage(HttpMethod.Post, "v1/completions")
        {
            Content = System.Net.Http.Json.JsonContent.Create(new { model = Model, prompt = "one two three four five six", max_tokens = 50, ignore_eos = true, stream = true }),
        };
        dropping.Headers.Add("x-vllmsim-abort-after-tokens", "3");
        using var streamed = await Http.SendAsync(dropping, HttpCompletionOption.ResponseHeadersRead);
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            var text = await streamed.Content.ReadAsStringAsync();
            // A clean end would carry [DONE]; a dropped connection either throws or ends without it.
            if (!text.Contains("[DONE]"))
            {
                throw new IOException("stream ended without [DONE]");
            }
        });
        await fixture.Sim.WaitForMetricsAsync(m => m.Sum("vllm:request_success_total", ("finished_reason", "abort")) == before + 1,
            TimeSpan.FromSeconds(10), "the dropped request counted as aborted");
    }

    [Fact]
    public async Task Tokenize_counts_what_a_chat_request_is_charged_and_detokenize_reverses_it()
    {
        var messages = new[] { new { role = "user", content = "How many tokens is this message?" } };
        var (_, tokenized) = await OpenAiHttp.PostJsonAsync(Http, "tokenize", new { model = Model, messages });
        var (_, chat) = await OpenAiHttp.PostJsonAsync(Http, "v1/chat/completions", new { model = Model, messages, max_tokens = 1 });
        Assert.Equal(chat!["usage"]!["prompt_tokens"]!.GetValue<int>(), tokenized!["count"]!.GetValue<int>());
        Assert.Equal(2048, tokenized["max_model_len"]!.GetValue<int>());

        var (_, plain) = await OpenAiHttp.PostJsonAsync(Http, "tokenize", new { model = Model, prompt = "Round trip, please: ünïcode ✓", add_special_tokens = false });
        var tokens = plain!["tokens"]!.AsArray().Select(t => t!.GetValue<int>()).ToArray();
        var (_, text) = await OpenAiHttp.PostJsonAsync(Http, "detokenize", new { model = Model, tokens });
        Assert.Equal("Round trip, please: ünïcode ✓", text!["prompt"]!.GetValue<string>());

        var (bad, badBody) = await OpenAiHttp.PostJsonAsync(Http, "detokenize", new { model = Model, tokens = new[] { -1 } });
        AssertError(bad, badBody, 400, "tokens");
    }

    [Fact]
    public async Task Lora_adapters_are_listed_with_their_parent_and_can_be_loaded_and_unloaded_at_runtime()
    {
        var chatPath = fixture.Adapters.Create("chat");
        using (var load = await Http.PostAsJsonAsync("v1/load_lora_adapter", new { lora_name = "chat-adapter", lora_path = chatPath }))
        {
            Assert.Equal(HttpStatusCode.OK, load.StatusCode);
            Assert.Contains("added successfully", await load.Content.ReadAsStringAsync());
        }
        var list = JsonNode.Parse(await Http.GetStringAsync("v1/models"))!["data"]!.AsArray();
        Assert.Contains(list, m => m!["id"]!.GetValue<string>() == "sql-adapter" && m["parent"]!.GetValue<string>() == Model);
        Assert.Contains(list, m => m!["id"]!.GetValue<string>() == "chat-adapter" && m["root"]!.GetValue<string>() == chatPath);

        var (ok, answer) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = "chat-adapter", prompt = "adapted", max_tokens = 2 });
        Assert.Equal(200, ok);
        Assert.Equal("chat-adapter", answer!["model"]!.GetValue<string>());

        var (again, againBody) = await OpenAiHttp.PostJsonAsync(Http, "v1/load_lora_adapter", new { lora_name = "chat-adapter", lora_path = chatPath });
        AssertError(again, againBody, 400);
        Assert.Equal("InvalidUserInput", againBody!["error"]!["type"]!.GetValue<string>());
        using var unload = await Http.PostAsJsonAsync("v1/unload_lora_adapter", new { lora_name = "chat-adapter" });
        Assert.Equal(HttpStatusCode.OK, unload.StatusCode);
        var (gone, goneBody) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = "chat-adapter", prompt = "adapted" });
        AssertError(gone, goneBody, 404, "model");
        var (unknown, unknownBody) = await OpenAiHttp.PostJsonAsync(Http, "v1/unload_lora_adapter", new { lora_name = "never-loaded" });
        AssertError(unknown, unknownBody, 404);
        Assert.Contains("lora_requests_info", await fixture.Sim.MetricsTextAsync());
    }

    [Fact]
    public async Task Service_endpoints_answer_for_probes()
    {
        using var health = await Http.GetAsync("health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Empty(await health.Content.ReadAsStringAsync()); // vLLM: Response(status_code=200)
        Assert.Equal("Healthy", await Http.GetStringAsync("alive"));
        Assert.Equal("0.11.0", JsonNode.Parse(await Http.GetStringAsync("version"))!["version"]!.GetValue<string>());
    }
}

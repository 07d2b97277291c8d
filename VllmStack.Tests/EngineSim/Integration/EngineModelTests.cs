using System.Diagnostics;
using System.Text;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.EngineSim.Integration;

/// <summary>
/// The engine model seen from outside, through HTTP and <c>/metrics</c> only: counters and histograms,
/// batching limits, prefix caching, preemption and client disconnects. Each test runs its own simulator.
/// </summary>
public sealed class EngineModelTests
{
    private const string Running = "vllm:num_requests_running";
    private const string Waiting = "vllm:num_requests_waiting";

    private static object Completion(string prompt, int maxTokens, bool stream = false) =>
        new { model = EngineSimProcess.DefaultModel, prompt, max_tokens = maxTokens, ignore_eos = true, stream };

    [Fact]
    public async Task Metrics_count_every_request_token_and_latency()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "fast"]);
        var before = await sim.MetricsAsync();
        Assert.Equal(0, before.Sum("vllm:request_success_total"));
        Assert.True(before.Contains("vllm:cache_config_info"));

        var promptTokens = 0;
        for (var i = 0; i < 5; i++)
        {
            var (status, body) = await OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions", Completion($"Request number {i} about metrics", 8));
            Assert.Equal(200, status);
            promptTokens += body!["usage"]!["prompt_tokens"]!.GetValue<int>();
        }

        var m = await sim.MetricsAsync();
        Assert.Equal(5, m.Sum("vllm:request_success_total", ("finished_reason", "length")));
        Assert.Equal(0, m.Sum("vllm:request_success_total", ("finished_reason", "stop")));
        Assert.Equal(40, m.Sum("vllm:generation_tokens_total"));
        Assert.Equal(promptTokens, m.Sum("vllm:prompt_tokens_total"));
        Assert.Equal(5, m.Sum("vllm:time_to_first_token_seconds_count"));
        Assert.Equal(35, m.Sum("vllm:inter_token_latency_seconds_count"));
        Assert.Equal(5, m.Sum("vllm:e2e_request_latency_seconds_count"));
        Assert.Equal(5, m.Sum("vllm:request_queue_time_seconds_count"));
        Assert.Equal(5, m.Sum("vllm:request_prefill_time_seconds_count"));
        Assert.Equal(5, m.Sum("vllm:request_decode_time_seconds_count"));
        Assert.Equal(40, m.Sum("vllm:request_generation_tokens_sum"));
        Assert.Equal(promptTokens, m.Sum("vllm:request_prompt_tokens_sum"));
        Assert.Equal(promptTokens, m.Sum("vllm:prefix_cache_queries_total"));
        // Each decode step of the fast profile takes at least a millisecond; 7 steps per request.
        Assert.True(m.Sum("vllm:inter_token_latency_seconds_sum") >= 35 * 0.0009);
        Assert.Equal(0, m.Sum(Running));
        Assert.Equal(0, m.Sum("vllm:kv_cache_usage_perc"));
        Assert.Contains(m, s => s.Name == Running && s.Has("model_name", EngineSimProcess.DefaultModel) && s.Has("engine", "0"));
    }

    [Fact]
    public async Task Requests_beyond_max_num_seqs_wait_and_all_finish()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "fast", "--max-num-seqs", "2", "--inter-token-latency-ms", "15"]);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var requests = Enumerable.Range(0, 6)
            .Select(i => OpenAiHttp.StreamAsync(sim.Http, "v1/completions", Completion($"Concurrent request {i}", 30, stream: true), cts.Token))
            .ToArray();

        var busy = await sim.WaitForMetricsAsync(m => m.Sum(Running) == 2 && m.Sum(Waiting) >= 1, TimeSpan.FromSeconds(20), "2 running and some waiting");
        Assert.True(busy.Sum("vllm:kv_cache_usage_perc") > 0);
        var maxRunning = 0.0;
        while (!requests.All(r => r.IsCompleted))
        {
            maxRunning = Math.Max(maxRunning, (await sim.MetricsAsync()).Sum(Running));
            await Task.Delay(25);
        }
        var results = await Task.WhenAll(requests);

        Assert.Equal(2, maxRunning);
        Assert.All(results, r => Assert.Equal("length", r.Chunks[^1]["choices"]![0]!["finish_reason"]!.GetValue<string>()));
        var done = await sim.MetricsAsync();
        Assert.Equal(6, done.Sum("vllm:request_success_total", ("finished_reason", "length")));
        Assert.Equal((0, 0), (done.Sum(Running), done.Sum(Waiting)));
        // Queue time shows the wait: four requests waited for a slot.
        Assert.True(done.Sum("vllm:request_queue_time_seconds_sum") > 0.1);
    }

    [Fact]
    public async Task A_repeated_long_prompt_hits_the_prefix_cache_and_starts_sooner()
    {
        await using var sim = await EngineSimProcess.StartAsync(
            ["--latency-preset", "fast", "--prefill-overhead-ms", "5", "--prefill-time-per-token-ms", "0.2", "--enable-prompt-tokens-details"]);
        var prompt = LongPrompt(3000);

        var first = await OpenAiHttp.StreamAsync(sim.Http, "v1/completions", Completion(prompt, 4, stream: true));
        var afterFirst = await sim.MetricsAsync();
        var second = await OpenAiHttp.StreamAsync(sim.Http, "v1/completions", Completion(prompt, 4, stream: true));
        var afterSecond = await sim.MetricsAsync();

        Assert.Equal(0, afterFirst.Sum("vllm:prefix_cache_hits_total"));
        var queried = afterSecond.Sum("vllm:prefix_cache_queries_total") - afterFirst.Sum("vllm:prefix_cache_queries_total");
        var hits = afterSecond.Sum("vllm:prefix_cache_hits_total");
        Assert.True(queried >= 3000);
        Assert.True(hits >= queried - 16, $"{hits} of {queried} tokens hit");
        // ~600 ms of prefill the first time, one block's worth the second.
        Assert.True(second.TimeToFirstToken * 3 < first.TimeToFirstToken,
            $"TTFT {second.TimeToFirstToken.TotalMilliseconds:F0} ms with the cache vs {first.TimeToFirstToken.TotalMilliseconds:F0} ms without");
        var prefillFirst = afterFirst.Sum("vllm:request_prefill_time_seconds_sum");
        var prefillSecond = afterSecond.Sum("vllm:request_prefill_time_seconds_sum") - prefillFirst;
        Assert.True(prefillSecond * 3 < prefillFirst);

        // A prompt that shares only the first half of the text hits about that half, in whole blocks.
        var half = prompt[..prompt.LastIndexOf(' ', prompt.Length / 2)];
        var sharedTokens = 1 + VllmStack.EngineSim.Tokenization.SimTokenizer.Count(half);
        var (_, shared) = await OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions", Completion(half + ". A different ending entirely", 4));
        var cached = shared!["usage"]!["prompt_tokens_details"]!["cached_tokens"]!.GetValue<int>();
        Assert.InRange(cached, sharedTokens - 16, sharedTokens);
        Assert.True(shared["usage"]!["prompt_tokens"]!.GetValue<int>() > sharedTokens);
    }

    [Fact]
    public async Task Running_out_of_kv_blocks_preempts_and_every_request_still_completes()
    {
        // 16 blocks of 16 tokens; three sequences growing to ~190 tokens (12 blocks) each cannot all fit.
        await using var sim = await EngineSimProcess.StartAsync(
            ["--latency-preset", "fast", "--block-size", "16", "--num-gpu-blocks", "16", "--max-model-len", "256", "--inter-token-latency-ms", "2"]);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var results = await Task.WhenAll(Enumerable.Range(0, 3).Select(i =>
            OpenAiHttp.PostJsonAsync(sim.Http, "v1/completions", Completion(LongPrompt(40, seed: i), 150), cts.Token)));

        Assert.All(results, r =>
        {
            Assert.Equal(200, r.Status);
            Assert.Equal(150, r.Body!["usage"]!["completion_tokens"]!.GetValue<int>());
        });
        var m = await sim.MetricsAsync();
        Assert.True(m.Sum("vllm:num_preemptions_total") >= 1);
        Assert.Equal(3, m.Sum("vllm:request_success_total", ("finished_reason", "length")));
        Assert.Equal(0, m.Sum("vllm:kv_cache_usage_perc"));
    }

    [Fact]
    public async Task A_client_that_disconnects_aborts_its_sequence_and_frees_its_blocks()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "fast", "--inter-token-latency-ms", "10"]);
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions")
            {
                Content = System.Net.Http.Json.JsonContent.Create(Completion(LongPrompt(200), 5000, stream: true)),
            };
            using var response = await sim.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            await using var body = await response.Content.ReadAsStreamAsync(cts.Token);
            using var reader = new StreamReader(body, Encoding.UTF8);
            for (var events = 0; events < 3;)
            {
                if ((await reader.ReadLineAsync(cts.Token))?.StartsWith("data: ", StringComparison.Ordinal) == true)
                {
                    events++;
                }
            }
            var busy = await sim.MetricsAsync();
            Assert.Equal(1, busy.Sum(Running));
            Assert.True(busy.Sum("vllm:kv_cache_usage_perc") > 0);
        }

        var after = await sim.WaitForMetricsAsync(m => m.Sum(Running) == 0 && m.Sum("vllm:request_success_total", ("finished_reason", "abort")) == 1,
            TimeSpan.FromSeconds(10), "the aborted request released");
        Assert.Equal(0, after.Sum("vllm:kv_cache_usage_perc"));
        Assert.True(after.Sum("vllm:generation_tokens_total") < 1000, "generation stopped when the client left");
    }

    /// <summary>English-like text of about <paramref name="tokens"/> tokens, different per seed.</summary>
    internal static string LongPrompt(int tokens, int seed = 0)
    {
        var words = new[] { "cluster", "engine", "token", "router", "cache", "prefix", "latency", "batch", "model", "stream" };
        var random = new Random(seed);
        var sb = new StringBuilder($"Document {seed}:");
        var count = VllmStack.EngineSim.Tokenization.SimTokenizer.Count(sb.ToString());
        while (count < tokens)
        {
            var word = " " + words[random.Next(words.Length)];
            sb.Append(word);
            count += VllmStack.EngineSim.Tokenization.SimTokenizer.Count(word);
        }
        return sb.ToString();
    }
}

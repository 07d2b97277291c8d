using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Router;

/// <summary>
/// Admission control under overload, with real EngineSim engines of a small, known capacity (2 sequences each, 25 ms
/// between tokens, no slow-down under load) behind a real router: requests beyond what the engines can take wait in the
/// router's fair queue or get 429, never a 5xx; a light client is served while a heavy one floods; a client that leaves
/// while queued leaves the queue; a client's queued requests go out by priority.
/// </summary>
[Collection(VllmStack.Tests.CacheServer.TimingSensitive.Name)]
public sealed class AdmissionControlTests
{
    private const string Model = EngineSimProcess.DefaultModel;
    private const string Queued = "vllmstack:router_admission_decisions_total";

    private static readonly string[] SmallEngine =
        ["--latency-preset", "fast", "--max-num-seqs", "2", "--inter-token-latency-ms", "25", "--time-factor-under-load", "1"];

    /// <summary>What one request saw: status, Retry-After, body (the error, or the stream), time to first token and in all.</summary>
    private sealed record Outcome(int Status, TimeSpan? RetryAfter, string Body, TimeSpan Ttft, TimeSpan Total);

    /// <summary>Engines and a router with these arguments, a client, and a bound on the test; everything is stopped after it.</summary>
    private static async Task WithRouterAsync(int engines, string[] engineArgs, string[] routerArgs,
        Func<EngineSimProcess[], RouterProcess, HttpClient, CancellationToken, Task> test)
    {
        var (started, router) = await RoutedEngines.StartAsync(engines, engineArgs, "leastload", routerArgs);
        try
        {
            using var http = new HttpClient { BaseAddress = router.BaseUrl, Timeout = TimeSpan.FromSeconds(90) };
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            await test(started, router, http, cts.Token);
        }
        finally
        {
            await RoutedEngines.StopAsync(started, router);
        }
    }

    /// <summary>One streamed chat of <paramref name="maxTokens"/> tokens from <paramref name="client"/> (the session header).</summary>
    private static async Task<Outcome> ChatAsync(HttpClient http, string client, int maxTokens, CancellationToken cancellationToken,
        int? priority = null, int? headerPriority = null)
    {
        var clock = Stopwatch.StartNew();
        var body = new JsonObject
        {
            ["model"] = Model,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = $"{client}: tell me something" }),
            ["max_tokens"] = maxTokens,
            ["ignore_eos"] = true,
            ["stream"] = true,
        };
        if (priority is { } p)
        {
            body["priority"] = p;
        }
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = JsonContent.Create(body) };
        request.Headers.Add("x-user-id", client);
        if (headerPriority is { } h)
        {
            request.Headers.Add("x-request-priority", h.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var reader = new StreamReader(stream);
        var text = new System.Text.StringBuilder();
        TimeSpan? ttft = null;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (ttft is null && line.StartsWith("data: {", StringComparison.Ordinal) && line.Contains("\"content\":\"", StringComparison.Ordinal))
            {
                ttft = clock.Elapsed;
            }
            text.Append(line).Append('\n');
        }
        return new Outcome((int)response.StatusCode, response.Headers.RetryAfter?.Delta, text.ToString(), ttft ?? clock.Elapsed, clock.Elapsed);
    }

    private static bool Completed(Outcome o) =>
        o.Status == 200 && o.Body.TrimEnd().EndsWith("data: [DONE]", StringComparison.Ordinal) && !o.Body.Contains("\"error\"", StringComparison.Ordinal);

    private static async Task<int> QueuedAsync(RouterProcess router) =>
        JsonNode.Parse(await router.Http.GetStringAsync("engines"))!["queued_requests"]?[Model]?.GetValue<int>() ?? 0;

    private static async Task WaitForQueuedAsync(RouterProcess router, int count, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        int last;
        while ((last = await QueuedAsync(router)) != count)
        {
            Assert.True(clock.Elapsed < timeout, $"the router's queue held {last} requests, not {count}, after {timeout}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task At_five_times_capacity_there_is_no_5xx_429s_carry_retry_after_and_openai_shape_and_admitted_ttft_stays_bounded()
    {
        // Two engines of 2 sequences, 20 tokens of 25 ms each: about 8 requests a second. Offered: 40 a second for 5 s.
        await WithRouterAsync(2, SmallEngine, ["--admission-control", "true", "--max-in-flight-per-engine", "3", "--max-queue-size", "16", "--max-queue-wait", "4"], async (engines, router, http, cancellationToken) =>
        {
            var outcomes = new ConcurrentBag<Outcome>();
            var sends = new List<Task>();
            for (var i = 0; i < 200; i++)
            {
                var client = $"client-{i % 10}";
                sends.Add(Task.Run(async () => outcomes.Add(await ChatAsync(http, client, 20, cancellationToken))));
                await Task.Delay(25);
            }
            await Task.WhenAll(sends);

            var all = outcomes.ToList();
            Assert.Equal([], all.Where(o => o.Status >= 500).Select(o => $"{o.Status} {o.Body}"));
            Assert.Equal([], all.Where(o => o.Status is not (200 or 429)).Select(o => $"{o.Status} {o.Body}"));
            var ok = all.Where(o => o.Status == 200).ToList();
            var limited = all.Where(o => o.Status == 429).ToList();
            Assert.True(limited.Count >= 20, $"only {limited.Count} of 200 requests were shed at 5× capacity");
            Assert.True(ok.Count >= 20, $"only {ok.Count} of 200 requests were served");
            Assert.All(ok, o => Assert.True(Completed(o), o.Body));
            foreach (var o in limited)
            {
                Assert.True(o.RetryAfter >= TimeSpan.FromSeconds(1), $"429 without Retry-After: {o.Body}");
                var error = JsonNode.Parse(o.Body)!["error"]!;
                Assert.Equal("requests", error["type"]!.GetValue<string>());
                Assert.Equal("rate_limit_exceeded", error["code"]!.GetValue<string>());
                Assert.Null(error["param"]);
                Assert.Contains("try again in", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
            }
            // Admitted requests waited at most the queue's 4 s, plus one request ahead of them in an engine: generous bound.
            var worst = ok.Max(o => o.Ttft);
            Assert.True(worst < TimeSpan.FromSeconds(12), $"an admitted request waited {worst.TotalSeconds:F1} s for its first token");

            var metrics = await router.MetricsAsync();
            Assert.Equal(limited.Count, metrics.Sum(Queued, ("decision", "rejected")));
            Assert.Equal(ok.Count, metrics.Sum(Queued, ("decision", "admitted")));
            Assert.True(metrics.Sum(Queued, ("decision", "admitted"), ("reason", "queued")) >= 1, "no request was ever queued");
            Assert.Equal(ok.Count, metrics.Sum("vllmstack:router_queue_wait_seconds_count", ("model", Model)));
        });
    }

    [Fact]
    public async Task Without_a_fixed_limit_the_engines_batch_is_learnt_from_its_metrics_and_later_requests_queue_in_the_router()
    {
        await WithRouterAsync(1, SmallEngine, ["--admission-control", "true", "--max-waiting-per-engine", "1", "--max-queue-wait", "60"], async (engines, router, http, cancellationToken) =>
        {
            // The router does not know the batch yet: the first wave reaches the engine, which runs 2 and queues the rest.
            var first = Enumerable.Range(0, 6).Select(i => ChatAsync(http, $"first-{i}", 60, cancellationToken)).ToList();
            await engines[0].WaitForMetricsAsync(m => m.Sum("vllm:num_requests_waiting") >= 3, TimeSpan.FromSeconds(10), "requests waiting in the engine");
            await router.WaitForEnginesAsync(e => e[0]!["engine_stats"]!["num_requests_waiting"]!.GetValue<double>() >= 3, TimeSpan.FromSeconds(10), "the scrape of the engine's queue");
            // Now it knows (2 running + 1 waiting): the second wave waits in the router, not in the engine.
            var second = Enumerable.Range(0, 6).Select(i => ChatAsync(http, $"second-{i}", 4, cancellationToken)).ToList();
            await WaitForQueuedAsync(router, 6, TimeSpan.FromSeconds(10));
            Assert.All(await Task.WhenAll(first.Concat(second)), o => Assert.True(Completed(o), $"{o.Status} {o.Body}"));
        });
    }

    [Fact]
    public async Task A_light_client_keeps_being_served_while_a_heavy_client_floods()
    {
        await WithRouterAsync(2, SmallEngine, ["--admission-control", "true", "--max-in-flight-per-engine", "2", "--max-queue-size", "200", "--max-queue-wait", "60"], async (engines, router, http, cancellationToken) =>
        {
            using var stopHeavy = new CancellationTokenSource();
            var heavy = new ConcurrentBag<Outcome>();
            var flood = Task.WhenAll(Enumerable.Range(0, 24).Select(async _ =>
            {
                for (var i = 0; i < 200 && !stopHeavy.IsCancellationRequested; i++)
                {
                    heavy.Add(await ChatAsync(http, "heavy", 20, cancellationToken));
                }
            }));
            await WaitForQueuedAsync(router, 20, TimeSpan.FromSeconds(30));

            var light = new List<Outcome>();
            for (var i = 0; i < 6; i++)
            {
                light.Add(await ChatAsync(http, "light", 20, cancellationToken));
            }
            await stopHeavy.CancelAsync();
            await flood;

            Assert.All(light, o => Assert.True(Completed(o), $"{o.Status} {o.Body}"));
            Assert.All(heavy, o => Assert.True(Completed(o), $"{o.Status} {o.Body}"));
            // The heavy client's requests wait behind about twenty of its own; the light client's, behind at most one turn.
            var lightMedian = Median(light.Select(o => o.Ttft.TotalSeconds));
            var heavyMedian = Median(heavy.Select(o => o.Ttft.TotalSeconds));
            Assert.True(lightMedian * 2.5 < heavyMedian,
                $"light client's median TTFT {lightMedian:F2} s is not far below the heavy client's {heavyMedian:F2} s ({heavy.Count} heavy requests)");
        });
    }

    [Fact]
    public async Task A_client_that_disconnects_while_queued_leaves_the_queue_at_once_and_frees_no_slot_twice()
    {
        await WithRouterAsync(1, ["--latency-preset", "fast", "--max-num-seqs", "1", "--inter-token-latency-ms", "25"],
            ["--admission-control", "true", "--max-in-flight-per-engine", "1", "--max-queue-wait", "20"], async (engines, router, http, cancellationToken) =>
        {
            var blocker = ChatAsync(http, "blocker", 120, cancellationToken);
            await router.WaitForEnginesAsync(e => e[0]!["in_flight"]!.GetValue<int>() == 1, TimeSpan.FromSeconds(10), "the blocker in flight");

            using var leave = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var leaving = ChatAsync(http, "leaver", 4, leave.Token);
            await WaitForQueuedAsync(router, 1, TimeSpan.FromSeconds(10));
            Assert.Equal(1, (await router.MetricsAsync()).Sum("vllmstack:router_queue_depth", ("model", Model)));
            await leave.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => leaving);
            var clock = Stopwatch.StartNew();
            await WaitForQueuedAsync(router, 0, TimeSpan.FromSeconds(2));
            Assert.True(blocker.IsCompleted is false, "the blocker ended before the queued client left: the test proves nothing");
            var left = clock.Elapsed;

            Assert.True(Completed(await blocker));
            var metrics = await router.MetricsAsync();
            Assert.Equal(1, metrics.Sum(Queued, ("decision", "abandoned"), ("reason", "client_disconnected")));
            // The slot is free exactly once: one request at a time is still admitted at once, and the next one queues behind it.
            var before = metrics.Sum(Queued, ("decision", "admitted"), ("reason", "immediate"));
            var first = ChatAsync(http, "after", 40, cancellationToken);
            await router.WaitForEnginesAsync(e => e[0]!["in_flight"]!.GetValue<int>() == 1, TimeSpan.FromSeconds(10), "the next request in flight");
            var second = ChatAsync(http, "after-2", 4, cancellationToken);
            await WaitForQueuedAsync(router, 1, TimeSpan.FromSeconds(10));
            Assert.True(Completed(await first));
            Assert.True(Completed(await second));
            metrics = await router.MetricsAsync();
            Assert.Equal(before + 1, metrics.Sum(Queued, ("decision", "admitted"), ("reason", "immediate")));
            Assert.True(left < TimeSpan.FromSeconds(2));
        });
    }

    [Fact]
    public async Task A_clients_queued_requests_go_out_by_priority_body_field_or_header()
    {
        // vLLM accepts a non-zero priority only under priority scheduling; the engine alone would order these by the body field.
        await WithRouterAsync(1, ["--latency-preset", "fast", "--max-num-seqs", "1", "--inter-token-latency-ms", "20", "--scheduling-policy", "priority"],
            ["--admission-control", "true", "--max-in-flight-per-engine", "1", "--max-queue-wait", "30"], async (engines, router, http, cancellationToken) =>
        {
            var blocker = ChatAsync(http, "blocker", 60, cancellationToken);
            await router.WaitForEnginesAsync(e => e[0]!["in_flight"]!.GetValue<int>() == 1, TimeSpan.FromSeconds(10), "the blocker in flight");

            var finished = new ConcurrentQueue<string>();
            var sent = new List<Task>();
            // Queued in this order; the header outranks the body field (3 here, though the body says 0).
            (string Name, int? Body, int? Header)[] requests = [("p5", 5, null), ("p1", 1, null), ("h3", 0, 3), ("p2", 2, null)];
            for (var i = 0; i < requests.Length; i++)
            {
                var (name, body, header) = requests[i];
                sent.Add(Task.Run(async () =>
                {
                    var outcome = await ChatAsync(http, "one-client", 4, cancellationToken, body, header);
                    Assert.True(Completed(outcome), outcome.Body);
                    finished.Enqueue(name);
                }));
                await WaitForQueuedAsync(router, i + 1, TimeSpan.FromSeconds(10));
            }
            Assert.True(Completed(await blocker));
            await Task.WhenAll(sent);
            Assert.Equal(["p1", "p2", "h3", "p5"], finished.ToArray());

            // A header that is no whole number is the client's mistake, said so, not a silent default priority.
            foreach (var bad in new[] { "abc", "1.5", "99999999999999999999" })
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
                {
                    Content = JsonContent.Create(new { model = EngineSimProcess.DefaultModel, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 2 }),
                };
                request.Headers.Add("x-request-priority", bad);
                using var response = await http.SendAsync(request, cancellationToken);
                var error = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken))!["error"]!;
                Assert.Equal(400, (int)response.StatusCode);
                Assert.Contains("x-request-priority", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
            }
        });
    }

    [Fact]
    public async Task Per_client_limits_on_concurrent_requests_and_tokens_per_minute_answer_429_for_that_client_only()
    {
        await WithRouterAsync(1, ["--latency-preset", "fast", "--inter-token-latency-ms", "20"],
            ["--client-max-concurrency", "1", "--client-tokens-per-minute", "300"], async (engines, router, http, cancellationToken) =>
        {
            var first = ChatAsync(http, "a", 60, cancellationToken);
            await router.WaitForEnginesAsync(e => e[0]!["in_flight"]!.GetValue<int>() == 1, TimeSpan.FromSeconds(10), "a's request in flight");
            var second = await ChatAsync(http, "a", 4, cancellationToken);
            var other = await ChatAsync(http, "b", 4, cancellationToken);
            Assert.True(Completed(await first));
            Assert.Equal(429, second.Status);
            Assert.True(second.RetryAfter >= TimeSpan.FromSeconds(1));
            Assert.Equal("requests", JsonNode.Parse(second.Body)!["error"]!["type"]!.GetValue<string>());
            Assert.True(Completed(other), other.Body);

            // 300 tokens a minute: a request of ~230 passes, the next one must wait for the bucket to refill.
            Assert.True(Completed(await ChatAsync(http, "c", 200, cancellationToken)));
            var overBudget = await ChatAsync(http, "c", 200, cancellationToken);
            Assert.Equal(429, overBudget.Status);
            var error = JsonNode.Parse(overBudget.Body)!["error"]!;
            Assert.Equal("tokens", error["type"]!.GetValue<string>());
            Assert.Equal("rate_limit_exceeded", error["code"]!.GetValue<string>());
            Assert.True(overBudget.RetryAfter >= TimeSpan.FromSeconds(1));
            Assert.True(Completed(await ChatAsync(http, "d", 200, cancellationToken)), "another client's budget is its own");

            // The official SDK reports the 429 as such, with the router's message (no retries here: this one never fits).
            var sdk = new OpenAI.OpenAIClient(new System.ClientModel.ApiKeyCredential("unused"), new OpenAI.OpenAIClientOptions
            {
                Endpoint = new Uri(router.BaseUrl, "v1"),
                NetworkTimeout = TimeSpan.FromSeconds(30),
                RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(maxRetries: 0),
            });
            var tooLarge = await Assert.ThrowsAsync<System.ClientModel.ClientResultException>(() => sdk.GetChatClient(Model).CompleteChatAsync(
                [new OpenAI.Chat.UserChatMessage("hi")], new OpenAI.Chat.ChatCompletionOptions { MaxOutputTokenCount = 400 }, cancellationToken));
            Assert.Equal(429, tooLarge.Status);
            Assert.Contains("tokens per minute", tooLarge.Message, StringComparison.Ordinal);

            var metrics = await router.MetricsAsync();
            Assert.Equal(1, metrics.Sum(Queued, ("decision", "rejected"), ("reason", "client_concurrency")));
            Assert.Equal(2, metrics.Sum(Queued, ("decision", "rejected"), ("reason", "client_tokens")));
        });
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted[sorted.Count / 2];
    }
}

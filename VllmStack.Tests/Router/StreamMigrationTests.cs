using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Router;

/// <summary>
/// Mid-stream migration with real processes: streams (chat and completions) and plain requests go through the router to
/// three EngineSims while one engine is SIGKILLed (or frozen with SIGSTOP) under them. Every request completes with a
/// finish reason and no error frame, and a migrated stream's text, usage, id and finish reason are those of an
/// uninterrupted run of the same request (EngineSim's text depends only on the seed and the text before it).
/// </summary>
public sealed class StreamMigrationTests
{
    private const string Model = EngineSimProcess.DefaultModel;
    private const int MaxTokens = 200;

    /// <summary>20 ms between tokens: a 200-token stream lasts about 4 s, long enough to be cut in the middle.</summary>
    private static readonly string[] EngineArgs = ["--latency-preset", "fast", "--inter-token-latency-ms", "20", "--max-model-len", "4096"];

    /// <summary>A stream as the client saw it: every event, raw.</summary>
    private sealed record Received(List<string> Events)
    {
        public List<JsonNode> Chunks => Events.Where(e => e.StartsWith("data: {", StringComparison.Ordinal)).Select(e => JsonNode.Parse(e["data: ".Length..])!).ToList();

        public int ErrorFrames => Chunks.Count(c => c["error"] is not null);

        public int Dones => Events.Count(e => e == "data: [DONE]");

        public int ContentChunks => Chunks.Count(c => !string.IsNullOrEmpty(Piece(c)));

        public string Text => string.Concat(Chunks.Select(Piece));

        public List<string> FinishReasons => Chunks.SelectMany(c => c["choices"]?.AsArray() ?? [])
            .Select(choice => choice!["finish_reason"]?.GetValue<string>()).OfType<string>().ToList();

        public JsonNode? Usage => Chunks.LastOrDefault(c => c["usage"] is JsonObject)?["usage"];

        private static string? Piece(JsonNode chunk) => chunk["choices"]?.AsArray().Select(choice =>
            choice!["delta"]?["content"]?.GetValue<string>() ?? choice["text"]?.GetValue<string>()).FirstOrDefault();
    }

    private static object StreamBody(int i, bool chat) => chat
        ? new
        {
            model = Model, messages = new[] { new { role = "user", content = $"Tell me story number {i}." } }, max_tokens = MaxTokens,
            seed = 1000 + i, ignore_eos = i % 3 != 0, stream = true, stream_options = new { include_usage = true },
        }
        : new { model = Model, prompt = $"Story {i} begins like this:", max_tokens = MaxTokens, seed = 1000 + i, ignore_eos = true, stream = true, stream_options = new { include_usage = true } };

    /// <summary>Reads a stream event by event; <paramref name="progress"/> learns how many content chunks came so far.</summary>
    private static async Task<Received> StreamAsync(HttpClient http, string path, object body, Action<int>? progress = null,
        IDictionary<string, string>? headers = null, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.Add(name, value);
        }
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        Assert.Equal(200, (int)response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken), Encoding.UTF8);
        var events = new List<string>();
        var current = new StringBuilder();
        var content = 0;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length > 0)
            {
                current.Append(current.Length > 0 ? "\n" : "").Append(line);
                continue;
            }
            var e = current.ToString();
            current.Clear();
            events.Add(e);
            if (e.Contains("\"content\":\"", StringComparison.Ordinal) && !e.Contains("\"content\":\"\"", StringComparison.Ordinal) || e.Contains("\"text\":\"", StringComparison.Ordinal))
            {
                progress?.Invoke(++content);
            }
        }
        return new Received(events);
    }

    private static async Task<(EngineSimProcess[] Engines, RouterProcess Router)> StartAsync(int engines, params string[] routerArgs)
    {
        var started = await Task.WhenAll(Enumerable.Range(0, engines).Select(_ => EngineSimProcess.StartAsync(EngineArgs)));
        var router = await RouterProcess.StartAsync(["--static-backends", string.Join(',', started.Select(e => e.BaseUrl)), "--routing-logic", "roundrobin", .. routerArgs]);
        await router.WaitForEnginesAsync(e => e.Count(x => x!["routable"]!.GetValue<bool>()) == engines, TimeSpan.FromSeconds(15), $"{engines} routable engines");
        return (started, router);
    }

    private static async Task StopAsync(EngineSimProcess[] engines, RouterProcess router)
    {
        await router.DisposeAsync();
        foreach (var engine in engines)
        {
            await engine.SignalAsync("CONT");
            await engine.DisposeAsync();
        }
    }

    /// <summary>The uninterrupted run of each stream, straight from an engine that stays up.</summary>
    private static async Task<Received[]> ReferenceAsync(EngineSimProcess engine, int streams) =>
        await Task.WhenAll(Enumerable.Range(0, streams).Select(i =>
            StreamAsync(engine.Http, i % 2 == 0 ? "v1/chat/completions" : "v1/completions", StreamBody(i, i % 2 == 0))));

    /// <summary>
    /// Streams and plain chats through the router; once every stream has some text, <paramref name="fault"/> strikes the
    /// first engine. Every request must complete as an uninterrupted one would.
    /// </summary>
    /// <remarks>
    /// A plain request waits for its response headers for the whole generation, so one on a frozen engine waits for that
    /// bound (<c>ResponseHeadersTimeout</c>, not retried: the engine may be working on it) or until the engine is killed (a
    /// liveness probe's restart), then goes to another engine whole; with <paramref name="killAfterStreams"/> the frozen
    /// engine is killed once the streams are done — which did not wait for that.
    /// </remarks>
    private static async Task RunChaosAsync(string fault, bool killAfterStreams, params string[] routerArgs)
    {
        const int streams = 12;
        const int plain = 12;
        var (engines, router) = await StartAsync(3, routerArgs);
        try
        {
            var reference = await ReferenceAsync(engines[1], streams);
            using var http = new HttpClient { BaseAddress = router.BaseUrl, Timeout = TimeSpan.FromSeconds(90) };
            var progress = new int[streams];
            var allStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            void Progressed(int i, int chunks)
            {
                progress[i] = chunks;
                if (progress.All(p => p >= 5))
                {
                    allStarted.TrySetResult();
                }
            }
            var streaming = Enumerable.Range(0, streams).Select(i => StreamAsync(http,
                i % 2 == 0 ? "v1/chat/completions" : "v1/completions", StreamBody(i, i % 2 == 0), n => Progressed(i, n))).ToArray();
            var plains = Enumerable.Range(0, plain).Select(async i =>
            {
                using var response = await http.PostAsJsonAsync("v1/chat/completions", new
                {
                    model = Model, messages = new[] { new { role = "user", content = $"plain {i}" } }, max_tokens = MaxTokens, seed = i, ignore_eos = true,
                });
                var text = await response.Content.ReadAsStringAsync();
                return ((int)response.StatusCode, text);
            }).ToArray();

            await allStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await engines[0].SignalAsync(fault);
            if (fault == "KILL")
            {
                // A migrated request leaves the dead engine's in-flight count at once, not when its stream ends elsewhere:
                // otherwise it reads as two requests, and admission control sees too little room.
                var dead = engines[0].BaseUrl.ToString().TrimEnd('/') + "/";
                var clock = System.Diagnostics.Stopwatch.StartNew();
                int inFlight;
                do
                {
                    await Task.Delay(50);
                    var listed = JsonNode.Parse(await http.GetStringAsync("engines"))!["engines"]!.AsArray();
                    inFlight = listed.Where(e => e!["url"]!.GetValue<string>() == dead).Sum(e => e!["in_flight"]!.GetValue<int>());
                }
                while (inFlight > 0 && clock.Elapsed < TimeSpan.FromSeconds(60));
                Assert.Equal(0, inFlight);
                Assert.False(streaming.All(t => t.IsCompleted), "the killed engine's in-flight count fell only when every stream had ended");
            }
            var results = await Task.WhenAll(streaming).WaitAsync(TimeSpan.FromSeconds(120));
            if (killAfterStreams)
            {
                await engines[0].SignalAsync("KILL");
            }
            var plainResults = await Task.WhenAll(plains).WaitAsync(TimeSpan.FromSeconds(120));

            var failures = new List<string>();
            for (var i = 0; i < streams; i++)
            {
                var got = results[i];
                var want = reference[i];
                var chunks = got.Chunks;
                if (got.ErrorFrames != 0 || got.Dones != 1)
                {
                    failures.Add($"stream {i}: {got.ErrorFrames} error frames, {got.Dones} [DONE]: {string.Join(" | ", got.Events.TakeLast(3))}");
                    continue;
                }
                if (got.Text != want.Text)
                {
                    failures.Add($"stream {i}: text differs from the uninterrupted run\n got: {got.Text}\nwant: {want.Text}");
                }
                if (!got.FinishReasons.SequenceEqual(want.FinishReasons))
                {
                    failures.Add($"stream {i}: finish reasons [{string.Join(',', got.FinishReasons)}], want [{string.Join(',', want.FinishReasons)}]");
                }
                if (got.Usage?.ToJsonString() is var usage && usage != want.Usage?.ToJsonString())
                {
                    failures.Add($"stream {i}: usage {usage}, want {want.Usage?.ToJsonString()}");
                }
                if (chunks.Select(c => (c["id"]!.GetValue<string>(), c["created"]!.GetValue<long>(), c["model"]!.GetValue<string>())).Distinct().Count() != 1)
                {
                    failures.Add($"stream {i}: id, created or model changed within the stream");
                }
                if (i % 2 == 0 && chunks.Count(c => c["choices"]?.AsArray().FirstOrDefault()?["delta"]?["role"] is not null) != 1)
                {
                    failures.Add($"stream {i}: {chunks.Count(c => c["choices"]?.AsArray().FirstOrDefault()?["delta"]?["role"] is not null)} role chunks");
                }
            }
            foreach (var (status, text) in plainResults)
            {
                if (status != 200 || JsonNode.Parse(text)?["choices"]?[0]?["finish_reason"]?.GetValue<string>() is null)
                {
                    failures.Add($"plain request: {status} {text[..Math.Min(300, text.Length)]}");
                }
            }
            Assert.True(failures.Count == 0, string.Join('\n', failures) + "\n" + router.Output[^Math.Min(3000, router.Output.Length)..]);

            var metrics = await router.MetricsAsync();
            Assert.True(metrics.Sum("vllmstack:router_stream_migrations_total", ("outcome", "resumed")) >= 1,
                "no stream was migrated: " + string.Join(' ', metrics.Where(s => s.Name.Contains("migration", StringComparison.Ordinal)).Select(s => $"{s.Name}{{{string.Join(',', s.Labels.Select(l => $"{l.Key}={l.Value}"))}}} {s.Value}")));
            Assert.Equal(0, metrics.Sum("vllmstack:router_stream_migrations_total", ("outcome", "no_engine")) + metrics.Sum("vllmstack:router_stream_migrations_total", ("outcome", "limit")));
            Assert.True(metrics.Sum("vllmstack:router_migration_delay_seconds_count") >= 1);
        }
        finally
        {
            await StopAsync(engines, router);
        }
    }

    [Fact]
    public Task Streams_survive_an_engine_killed_under_them_word_for_word() => RunChaosAsync("KILL", killAfterStreams: false);

    [Fact]
    public Task Streams_survive_an_engine_frozen_under_them_once_the_idle_timeout_fires() => RunChaosAsync("STOP", killAfterStreams: true,
        "--Router:Forwarding:IdleTimeout=2", "--Router:Forwarding:FirstByteTimeout=4");

    [Fact]
    public async Task A_client_that_leaves_is_not_migrated()
    {
        var (engines, router) = await StartAsync(2);
        try
        {
            using var http = new HttpClient { BaseAddress = router.BaseUrl, Timeout = TimeSpan.FromSeconds(60) };
            using var leave = new CancellationTokenSource();
            var reading = StreamAsync(http, "v1/chat/completions", StreamBody(0, chat: true), n =>
            {
                if (n >= 5)
                {
                    leave.Cancel();
                }
            }, cancellationToken: leave.Token);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);
            await Task.Delay(1000);

            var metrics = await router.MetricsAsync();
            Assert.Equal(1, metrics.Sum("vllm:num_incoming_requests_total"));
            Assert.Equal(0, metrics.Sum("vllmstack:router_stream_migrations_total"));
            Assert.Equal(0, metrics.Sum("vllmstack:router_engine_failures_total"));
        }
        finally
        {
            await StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task A_stream_whose_continuations_fail_too_ends_with_one_error_frame()
    {
        var (engines, router) = await StartAsync(3, "--max-migrations", "2");
        try
        {
            using var http = new HttpClient { BaseAddress = router.BaseUrl, Timeout = TimeSpan.FromSeconds(60) };
            var reference = await StreamAsync(engines[0].Http, "v1/chat/completions", StreamBody(1, chat: true));
            // Every engine drops the stream after 10 tokens (the header travels with each continuation).
            var got = await StreamAsync(http, "v1/chat/completions", StreamBody(1, chat: true),
                headers: new Dictionary<string, string> { ["x-vllmsim-abort-after-tokens"] = "10" });

            Assert.Equal(1, got.ErrorFrames);
            Assert.Equal(1, got.Dones);
            Assert.Equal("data: [DONE]", got.Events[^1]);
            Assert.Empty(got.FinishReasons);
            // Three engines, ten tokens each, none repeated or lost.
            Assert.Equal(30, got.ContentChunks);
            Assert.StartsWith(got.Text, reference.Text, StringComparison.Ordinal);

            var metrics = await router.MetricsAsync();
            Assert.Equal(2, metrics.Sum("vllmstack:router_stream_migrations_total", ("outcome", "resumed")));
            Assert.Equal(1, metrics.Sum("vllmstack:router_stream_migrations_total", ("outcome", "limit")));
            Assert.Equal(3, metrics.Sum("vllmstack:router_engine_failures_total"));
        }
        finally
        {
            await StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task A_stream_that_cannot_be_continued_ends_with_the_error_frame_as_before()
    {
        var (engines, router) = await StartAsync(2);
        try
        {
            using var http = new HttpClient { BaseAddress = router.BaseUrl, Timeout = TimeSpan.FromSeconds(60) };
            var got = await StreamAsync(http, "v1/chat/completions", new
            {
                model = Model, messages = new[] { new { role = "user", content = "two answers" } }, max_tokens = 50, n = 2, stream = true,
            }, headers: new Dictionary<string, string> { ["x-vllmsim-abort-after-tokens"] = "5" });

            Assert.Equal(1, got.ErrorFrames);
            Assert.Equal(1, got.Dones);
            var metrics = await router.MetricsAsync();
            Assert.Equal(1, metrics.Sum("vllmstack:router_stream_migrations_total", ("outcome", "not_continuable")));
            Assert.Equal(1, metrics.Sum("vllm:num_incoming_requests_total"));
        }
        finally
        {
            await StopAsync(engines, router);
        }
    }
}

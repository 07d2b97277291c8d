using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using VllmStack.Router.Api;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Router;

/// <summary>
/// A request's own problems never change the router's view of engine health: bad input is answered with a 4xx before
/// any engine sees it, unusual input is served, and only engine-side failures eject an engine — never the last one.
/// </summary>
public sealed class RouterRobustnessTests
{
    private const string Model = EngineSimProcess.DefaultModel;

    /// <summary>A client that sends header values as UTF-8 bytes, as browsers behind Cloudflare and many SDKs do.</summary>
    private static HttpClient RawClient(Uri baseUrl) => new(new SocketsHttpHandler
    {
        UseProxy = false,
        RequestHeaderEncodingSelector = (_, _) => Encoding.UTF8,
        ResponseHeaderEncodingSelector = (_, _) => Encoding.UTF8,
    })
    { BaseAddress = baseUrl, Timeout = TimeSpan.FromSeconds(60) };

    private static Task<(EngineSimProcess[] Engines, RouterProcess Router)> StartAsync(int engines, string[] engineArgs, params string[] routerArgs) =>
        RoutedEngines.StartAsync(engines, engineArgs, "roundrobin", routerArgs);

    private static Task StopAsync(EngineSimProcess[] engines, RouterProcess router) => RoutedEngines.StopAsync(engines, router);

    /// <summary>Well-behaved clients sending chats (streaming and not) until told to stop; every status is kept.</summary>
    private static (Task Done, ConcurrentBag<int> Statuses) WellBehavedClients(HttpClient http, int clients, CancellationToken stop)
    {
        var statuses = new ConcurrentBag<int>();
        var done = Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
        {
            for (var i = 0; !stop.IsCancellationRequested && i < 2_000; i++)
            {
                var body = new { model = Model, messages = new[] { new { role = "user", content = $"client {c} request {i}" } }, max_tokens = 4, stream = i % 2 == 0 };
                using var response = await http.PostAsJsonAsync("v1/chat/completions", body, CancellationToken.None);
                var text = await response.Content.ReadAsStringAsync(CancellationToken.None);
                statuses.Add((int)response.StatusCode == 200 && (body.stream ? text.EndsWith("data: [DONE]\n\n", StringComparison.Ordinal) && !text.Contains("\"error\"") : true)
                    ? 200 : (int)response.StatusCode == 200 ? 599 : (int)response.StatusCode);
            }
        }));
        return (done, statuses);
    }

    private static bool IsOpenAiError(string text)
    {
        try
        {
            var error = JsonNode.Parse(text)?["error"];
            return error?["message"] is JsonValue && error["type"] is JsonValue;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    /// <summary>Every well-behaved request succeeded, and the router holds nothing against any engine.</summary>
    private static async Task AssertOthersServedAndNoEngineBlamedAsync(RouterProcess router, int engines, IReadOnlyCollection<int> goodStatuses)
    {
        Assert.NotEmpty(goodStatuses);
        Assert.All(goodStatuses, s => Assert.Equal(200, s));
        var view = JsonNode.Parse(await router.Http.GetStringAsync("engines"))!["engines"]!.AsArray();
        Assert.Equal(engines, view.Count);
        Assert.All(view, e =>
        {
            Assert.True(e!["routable"]!.GetValue<bool>(), e.ToJsonString());
            Assert.Equal(0, e["consecutive_gateway_failures"]!.GetValue<int>());
            Assert.Equal(0, e["consecutive_5xx"]!.GetValue<int>());
        });
        var metrics = await router.MetricsAsync();
        Assert.Equal(0, metrics.Sum("vllmstack:router_engine_failures_total"));
        Assert.Equal(0, metrics.Sum("vllmstack:router_ejections_total"));
    }

    [Fact]
    public async Task A_corpus_of_bad_requests_gets_4xx_answers_while_other_clients_are_served_and_no_engine_is_blamed()
    {
        const int bodyLimit = 64 * 1024;
        var (engines, router) = await StartAsync(2, ["--latency-preset", "instant", "--max-model-len", "4096"], $"--Router:MaxRequestBodyBytes={bodyLimit}");
        try
        {
            var corpus = BadRequestCorpus.Build(Model, bodyLimit);
            Assert.True(corpus.Count >= 200, $"only {corpus.Count} cases");
            using var http = RawClient(router.BaseUrl);
            using var stop = new CancellationTokenSource();
            var (good, goodStatuses) = WellBehavedClients(http, 3, stop.Token);

            var failures = new ConcurrentQueue<string>();
            await Parallel.ForEachAsync(corpus, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (bad, _) =>
            {
                try
                {
                    using var message = bad.ToMessage();
                    using var response = await http.SendAsync(message, CancellationToken.None);
                    var status = (int)response.StatusCode;
                    var text = await response.Content.ReadAsStringAsync(CancellationToken.None);
                    if (status is < 400 or >= 500 || (bad.Expected is { } expected && status != expected))
                    {
                        failures.Enqueue($"{bad}: {status} (expected {bad.Expected?.ToString() ?? "4xx"}) {text[..Math.Min(200, text.Length)]}");
                    }
                    else if (!bad.FromKestrel && !IsOpenAiError(text))
                    {
                        failures.Enqueue($"{bad}: {status} without an OpenAI-style error: {text[..Math.Min(200, text.Length)]}");
                    }
                }
                catch (HttpRequestException e)
                {
                    failures.Enqueue($"{bad}: {e.GetType().Name} {e.Message}");
                }
            });
            await stop.CancelAsync();
            await good;

            Assert.True(failures.IsEmpty, $"{failures.Count} of {corpus.Count} bad requests were mishandled:\n{string.Join('\n', failures)}");
            await AssertOthersServedAndNoEngineBlamedAsync(router, 2, goodStatuses);
        }
        finally
        {
            await StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task Invalid_utf8_and_a_utf8_header_twenty_times_each_cost_other_clients_nothing()
    {
        var (engines, router) = await StartAsync(2, ["--latency-preset", "instant"]);
        try
        {
            using var http = RawClient(router.BaseUrl);
            using var latin1Client = new HttpClient(new SocketsHttpHandler { UseProxy = false, RequestHeaderEncodingSelector = (_, _) => Encoding.Latin1 })
            {
                BaseAddress = router.BaseUrl,
            };
            using var stop = new CancellationTokenSource();
            var (good, goodStatuses) = WellBehavedClients(http, 4, stop.Token);
            var invalid = new List<int>();
            var accented = new List<int>();
            for (var i = 0; i < 20; i++)
            {
                using var bad = new ByteArrayContent([.. "{\"model\":\"test-org/test-model-8b\",\"messages\":[{\"role\":\"user\",\"content\":\""u8, 0xFF, 0xFE, .. "\"}]}"u8]);
                bad.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                using (var response = await http.PostAsync("v1/chat/completions", bad))
                {
                    invalid.Add((int)response.StatusCode);
                    Assert.Contains("UTF-8", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["message"]!.GetValue<string>());
                }
                using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
                {
                    Content = JsonContent.Create(new { model = Model, messages = new[] { new { role = "user", content = "Olá" } }, max_tokens = 3 }),
                };
                request.Headers.TryAddWithoutValidation("cf-region", "São Paulo");
                request.Headers.TryAddWithoutValidation("cf-ipcity", "Zürich");
                using (var response = await http.SendAsync(request))
                {
                    accented.Add((int)response.StatusCode);
                }
                // The same value in Latin-1 bytes (obs-text, which vLLM's uvicorn takes): served too.
                using var latin1 = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
                {
                    Content = JsonContent.Create(new { model = Model, messages = new[] { new { role = "user", content = "Olá" } }, max_tokens = 3 }),
                };
                latin1.Headers.TryAddWithoutValidation("cf-region", "São Paulo");
                using (var response = await latin1Client.SendAsync(latin1))
                {
                    accented.Add((int)response.StatusCode);
                }
            }
            await stop.CancelAsync();
            await good;

            Assert.All(invalid, s => Assert.Equal(400, s));
            Assert.Equal(40, accented.Count);
            Assert.All(accented, s => Assert.Equal(200, s));
            await AssertOthersServedAndNoEngineBlamedAsync(router, 2, goodStatuses);
        }
        finally
        {
            await StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task An_engine_answering_500_to_everything_is_ejected_but_never_the_last_one()
    {
        await using var broken = await EngineSimProcess.StartAsync(["--latency-preset", "instant", "--failure-rate", "1", "--failure-types", "server_error"]);
        await using var healthy = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        await using var router = await RouterProcess.StartAsync(["--static-backends", $"{broken.BaseUrl},{healthy.BaseUrl}", "--routing-logic", "roundrobin",
            "--Router:OutlierDetection:BaseEjectionSeconds=30", "--Router:OutlierDetection:MaxEjectionSeconds=30"]);
        await router.WaitForEnginesAsync(e => e.Count(x => x!["routable"]!.GetValue<bool>()) == 2, TimeSpan.FromSeconds(15), "two routable engines");
        var body = new { model = Model, prompt = "x", max_tokens = 2 };

        // A 500 is the engine's answer: relayed as it is, never retried elsewhere; a streak of five ejects the engine.
        var statuses = new List<int>();
        for (var i = 0; i < 20; i++)
        {
            var (status, answer) = await OpenAiHttp.PostJsonAsync(router.Http, "v1/completions", body);
            statuses.Add(status);
            if (status == 500)
            {
                Assert.Contains("injected failure", answer!["error"]!["message"]!.GetValue<string>());
            }
        }
        Assert.Equal(5, statuses.Count(s => s == 500));
        Assert.Equal(15, statuses.Count(s => s == 200));
        Assert.All(statuses.Skip(10), s => Assert.Equal(200, s));
        var view = await router.WaitForEnginesAsync(e => true, TimeSpan.FromSeconds(1), "the view");
        var brokenView = view["engines"]!.AsArray().Single(e => e!["url"]!.GetValue<string>() == broken.BaseUrl.ToString())!;
        Assert.Equal("ejected", brokenView["health"]!.GetValue<string>());
        var metrics = await router.MetricsAsync();
        Assert.Equal(1, metrics.Sum("vllmstack:router_ejections_total", ("reason", "server_error_status")));
        Assert.Equal(0, metrics.Sum("vllmstack:router_retries_total"));

        // The healthy engine dies: the broken one is all that is left, so requests reach it (its 500s, not the router's 503s).
        healthy.Kill();
        await router.WaitForEnginesAsync(e => e.Count(x => x!["health"]!.GetValue<string>() == "unhealthy") == 1, TimeSpan.FromSeconds(10), "the dead engine failing its probe");
        for (var i = 0; i < 10; i++)
        {
            var (status, answer) = await OpenAiHttp.PostJsonAsync(router.Http, "v1/completions", body);
            Assert.Equal(500, status);
            Assert.Contains("injected failure", answer!["error"]!["message"]!.GetValue<string>());
        }
        Assert.True((await router.MetricsAsync()).Sum("vllmstack:router_panic_routed_requests_total") >= 10);
    }

    [Fact]
    public async Task Every_forwarded_path_reaches_the_engine_with_its_body_intact_and_the_engine_key()
    {
        const string model = "stub-model";
        const int headLimit = 64 * 1024;
        await using var stub = await StubEngine.StartAsync(model);
        await using var router = await RouterProcess.StartAsync(["--static-backends", stub.BaseUrl.ToString(), "--engine-api-key", "engine-secret",
            $"--Router:MaxRequestBodyBytes={headLimit}"]);
        await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "the stub engine");
        using var http = RawClient(router.BaseUrl);

        async Task<(int Status, JsonNode? Answer, ReceivedRequest? Received, string? Region)> SendAsync(string path, byte[] body, string contentType)
        {
            stub.Received.Clear();
            using var request = new HttpRequestMessage(HttpMethod.Post, path.TrimStart('/')) { Content = new ByteArrayContent(body) };
            request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "client-key");
            request.Headers.TryAddWithoutValidation("cf-region", "São Paulo");
            using var response = await http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            return ((int)response.StatusCode, text.Length > 0 ? JsonNode.Parse(text) : null, stub.Received.LastOrDefault(),
                response.Headers.TryGetValues("x-stub-region", out var region) ? region.Single() : null);
        }

        var random = new Random(7);
        foreach (var route in ForwardedRoutes.All)
        {
            byte[] body;
            string contentType;
            if (route.Body == RequestBodyKind.Json)
            {
                body = Encoding.UTF8.GetBytes($$$"""{"model":"{{{model}}}","input":"naïve — 日本語 {{{random.Next()}}}","nested":{"x":[1,2,3]}}""");
                contentType = "application/json; charset=utf-8";
            }
            else
            {
                var audio = new byte[256 * 1024];
                random.NextBytes(audio);
                body = BadRequestCorpus.Multipart(model, audio);
                contentType = $"multipart/form-data; boundary={BadRequestCorpus.Boundary}";
            }
            var (status, answer, received, region) = await SendAsync(route.Path, body, contentType);
            Assert.True(status == 200, $"{route.Path}: {status} {answer?.ToJsonString()}");
            Assert.NotNull(received);
            Assert.Equal(route.Path, received.Path);
            Assert.Equal("Bearer engine-secret", received.Authorization);
            Assert.Equal(contentType, received.ContentType);
            Assert.Equal((body.Length, StubEngine.Sha256(body)), (received.Length, received.Sha256));
            Assert.Equal(StubEngine.Sha256(body), answer!["sha256"]!.GetValue<string>());
            Assert.Equal("São Paulo", received.Headers["cf-region"]);
            Assert.Equal("São Paulo", region);
        }

        // An upload 64 times the router's buffer limit streams through when its model comes first...
        var large = new byte[4 * 1024 * 1024];
        random.NextBytes(large);
        var streamed = BadRequestCorpus.Multipart(model, large);
        var (bigStatus, _, bigReceived, _) = await SendAsync("/v1/audio/translations", streamed, $"multipart/form-data; boundary={BadRequestCorpus.Boundary}");
        Assert.Equal(200, bigStatus);
        Assert.Equal(StubEngine.Sha256(streamed), bigReceived!.Sha256);
        // ...and the model may come after the audio as long as what precedes it fits the buffer.
        var small = BadRequestCorpus.Multipart(model, large[..(headLimit / 2)], modelFirst: false);
        var (lateStatus, _, lateReceived, _) = await SendAsync("/v1/audio/transcriptions", small, $"multipart/form-data; boundary={BadRequestCorpus.Boundary}");
        Assert.Equal(200, lateStatus);
        Assert.Equal(StubEngine.Sha256(small), lateReceived!.Sha256);
    }

    [Fact]
    public async Task A_stream_whose_first_token_comes_after_the_idle_timeout_is_delivered_with_keep_alive_comments()
    {
        await using var engine = await EngineSimProcess.StartAsync(["--latency-preset", "fast", "--output-mode", "echo"]);
        await using var router = await RouterProcess.StartAsync(["--static-backends", engine.BaseUrl.ToString(),
            "--Router:Forwarding:IdleTimeout=1", "--Router:Forwarding:KeepAliveInterval=1.5", "--Router:Forwarding:FirstByteTimeout=4"]);
        await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "a routable engine");

        async Task<(string Text, TimeSpan HeadersAfter)> StreamAsync(int firstTokenDelayMs)
        {
            var clock = Stopwatch.StartNew();
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
            {
                Content = JsonContent.Create(new { model = Model, messages = new[] { new { role = "user", content = "patience is a virtue" } }, stream = true }),
            };
            request.Headers.Add("x-vllmsim-first-token-delay-ms", firstTokenDelayMs.ToString(System.Globalization.CultureInfo.InvariantCulture));
            using var response = await router.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            var headersAfter = clock.Elapsed;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (await response.Content.ReadAsStringAsync(), headersAfter);
        }

        // First token at 3 s: past the 1 s idle timeout, within the 4 s first-byte timeout. The headers come at once, not
        // with the first keep-alive comment 1.5 s later.
        var (text, headersAfter) = await StreamAsync(3_000);
        Assert.True(headersAfter < TimeSpan.FromSeconds(1.2), $"headers after {headersAfter}");
        var keepAlives = text.Split("\n").Count(line => line == ": keep-alive");
        Assert.InRange(keepAlives, 1, 2);
        Assert.DoesNotContain("\"error\"", text);
        Assert.EndsWith("data: [DONE]\n\n", text);
        var delivered = string.Concat(text.Split("\n\n").Where(e => e.StartsWith("data: {", StringComparison.Ordinal))
            .Select(e => JsonNode.Parse(e["data: ".Length..])!["choices"]!.AsArray().FirstOrDefault()?["delta"]?["content"]?.GetValue<string>()));
        Assert.Equal("patience is a virtue", delivered);

        // Past the first-byte timeout the router gives up on the engine and ends the stream cleanly.
        var (late, _) = await StreamAsync(6_000);
        Assert.Contains("no body byte within 4 s", late);
        Assert.EndsWith("data: [DONE]\n\n", late);
        var metrics = await router.MetricsAsync();
        Assert.True(metrics.Sum("vllmstack:router_sse_keepalives_total") >= 3);
        Assert.Equal(1, metrics.Sum("vllmstack:router_engine_failures_total", ("reason", "first_byte_timeout")));
    }

    [Fact]
    public async Task A_client_that_reads_a_stream_slowly_is_not_the_engines_silence()
    {
        await using var engine = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        await using var router = await RouterProcess.StartAsync(["--static-backends", engine.BaseUrl.ToString(), "--Router:Forwarding:IdleTimeout=1"]);
        await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "a routable engine");

        // A small receive buffer, so that the router's writes block while this client pauses (longer than the idle timeout).
        using var slow = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = async (context, token) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
                await socket.ConnectAsync(context.DnsEndPoint, token);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            },
        })
        { BaseAddress = router.BaseUrl, Timeout = TimeSpan.FromSeconds(60) };
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions")
        {
            Content = JsonContent.Create(new { model = Model, prompt = "go", max_tokens = 20_000, ignore_eos = true, stream = true }),
        };
        using var response = await slow.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using var body = await response.Content.ReadAsStreamAsync();
        var start = new byte[4096];
        await body.ReadAtLeastAsync(start, start.Length);
        await Task.Delay(TimeSpan.FromSeconds(3));
        using var reader = new StreamReader(body);
        var rest = await reader.ReadToEndAsync();
        Assert.DoesNotContain("\"error\"", rest);
        Assert.EndsWith("data: [DONE]\n\n", rest);
        Assert.Equal(0, (await router.MetricsAsync()).Sum("vllmstack:router_engine_failures_total"));
    }

    [Fact]
    public async Task The_engine_gets_the_routers_trace_context_in_the_clients_trace_with_its_baggage()
    {
        await using var stub = await StubEngine.StartAsync("stub-model");
        await using var router = await RouterProcess.StartAsync(["--static-backends", stub.BaseUrl.ToString()]);
        await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "the stub engine");

        var traceId = System.Diagnostics.ActivityTraceId.CreateRandom().ToHexString();
        var clientSpan = System.Diagnostics.ActivitySpanId.CreateRandom().ToHexString();
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions")
        {
            Content = new StringContent("""{"model":"stub-model","prompt":"hi"}""", System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("traceparent", $"00-{traceId}-{clientSpan}-01");
        request.Headers.Add("baggage", "tenant=acme");
        using var response = await router.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        // One traceparent, in the client's trace, whose parent is the router's span — not the client's passed through.
        var headers = stub.Received.Last().Headers;
        var parts = headers["traceparent"].Split('-');
        Assert.Equal(4, parts.Length);
        Assert.Equal(traceId, parts[1]);
        Assert.NotEqual(clientSpan, parts[2]);
        Assert.True(headers.TryGetValue("baggage", out var baggage) && baggage.Replace(" ", "", StringComparison.Ordinal).Contains("tenant=acme", StringComparison.Ordinal), string.Join("; ", headers.Select(h => $"{h.Key}: {h.Value}")));
    }

    [Fact]
    public async Task A_slow_upload_is_not_the_engines_delay()
    {
        await using var stub = await StubEngine.StartAsync("stub-model");
        await using var router = await RouterProcess.StartAsync(["--static-backends", stub.BaseUrl.ToString(), "--Router:Forwarding:ResponseHeadersTimeout=1"]);
        await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "the stub engine");

        // The audio trickles in over about 3 s: three times the time the engine is given to answer once it has it all.
        var upload = BadRequestCorpus.Multipart("stub-model", new byte[24 * 1024]);
        using var content = new TricklingContent(upload, pieces: 12, pause: TimeSpan.FromMilliseconds(250));
        content.Headers.TryAddWithoutValidation("Content-Type", $"multipart/form-data; boundary={BadRequestCorpus.Boundary}");
        using var response = await router.Http.PostAsync("v1/audio/transcriptions", content);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(StubEngine.Sha256(upload), JsonNode.Parse(await response.Content.ReadAsStringAsync())!["sha256"]!.GetValue<string>());
        Assert.Equal(0, (await router.MetricsAsync()).Sum("vllmstack:router_engine_failures_total"));
    }

    [Fact]
    public async Task An_engine_that_refuses_a_body_while_it_is_being_sent_is_not_blamed()
    {
        // A strict engine: past 64 KiB it answers 413 at once and closes while the router is still sending.
        await using var strict = await StubEngine.StartAsync("stub-model", maxRequestBodySize: 64 * 1024);
        await using var router = await RouterProcess.StartAsync(["--static-backends", strict.BaseUrl.ToString()]);
        await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "the stub engine");

        var big = Encoding.UTF8.GetBytes($$"""{"model":"stub-model","input":"{{new string('x', 8 * 1024 * 1024)}}"}""");
        for (var i = 0; i < 3; i++)
        {
            using var content = new ByteArrayContent(big);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var response = await router.Http.PostAsync("v1/embeddings", content);
            // Either the engine's own 413 got through, or the router could not see it and says the body was not taken.
            Assert.Contains((int)response.StatusCode, new[] { 413, 502 });
        }
        var metrics = await router.MetricsAsync();
        Assert.Equal(0, metrics.Sum("vllmstack:router_engine_failures_total"));
        Assert.Equal(0, metrics.Sum("vllmstack:router_retries_total"));
        await AssertOthersServedAndNoEngineBlamedAsync(router, 1, [200]);
    }

    /// <summary>A body sent in pieces with pauses between them, as a client on a slow link sends it.</summary>
    [Fact]
    public async Task A_chunked_json_request_reaches_the_engine_whole_with_its_length()
    {
        await using var stub = await StubEngine.StartAsync("stub-model");
        await using var router = await RouterProcess.StartAsync(["--static-backends", stub.BaseUrl.ToString()]);
        await router.WaitForEnginesAsync(e => e.Count == 1 && e[0]!["routable"]!.GetValue<bool>(), TimeSpan.FromSeconds(15), "the stub engine");

        // The client does not declare a length (chunked); the router holds the whole body, so the engine gets one.
        var body = Encoding.UTF8.GetBytes($$"""{"model":"stub-model","prompt":"{{new string('x', 40_000)}}"}""");
        using var content = new TricklingContent(body, pieces: 4, pause: TimeSpan.FromMilliseconds(20), knownLength: false);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await router.Http.PostAsync("v1/completions", content);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = stub.Received.Last();
        Assert.Equal(StubEngine.Sha256(body), received.Sha256);
        Assert.Equal(body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), received.Headers["content-length"]);
        Assert.False(received.Headers.ContainsKey("transfer-encoding"));
        Assert.True(response.Headers.Contains("x-request-id"));
    }

    private sealed class TricklingContent(byte[] body, int pieces, TimeSpan pause, bool knownLength = true) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var size = (body.Length + pieces - 1) / pieces;
            for (var offset = 0; offset < body.Length; offset += size)
            {
                await stream.WriteAsync(body.AsMemory(offset, Math.Min(size, body.Length - offset)));
                await stream.FlushAsync();
                await Task.Delay(pause);
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = body.Length;
            return knownLength;
        }
    }
}
